import assert from "node:assert/strict";
import { acceptLoop } from "../../platform/unix_line.ts";

/** A listener answering from a script: an Error is thrown, anything else is a connection. */
function scripted(steps: (Error | string)[]) {
  let closed = false;
  return {
    close: () => closed = true,
    closed: () => closed,
    accept(): Promise<Deno.Conn> {
      const s = steps.shift();
      if (s === undefined) {
        closed = true;
        return Promise.reject(new Deno.errors.BadResource("listener closed"));
      }
      if (s instanceof Error) return Promise.reject(s);
      return Promise.resolve({ name: s } as unknown as Deno.Conn);
    },
  };
}

Deno.test("an accept error is reported and the loop keeps accepting after a growing pause", async () => {
  const l = scripted(["a", new Error("Too many open files"), new Error("again"), "b"]);
  const got: string[] = [];
  const errors: string[] = [];
  const pauses: number[] = [];
  await acceptLoop(l, (c) => got.push((c as unknown as { name: string }).name), {
    closed: l.closed,
    onError: (e, ms) => errors.push(`${(e as Error).message} ${ms}`),
    sleep: (ms) => (pauses.push(ms), Promise.resolve()),
  });
  assert.deepEqual(got, ["a", "b"], "the connection after the errors is served");
  assert.deepEqual(errors, ["Too many open files 50", "again 100"]);
  assert.deepEqual(pauses, [50, 100]);
});

Deno.test("a listener gone without close() is reported once and ends the loop", async () => {
  let first = true;
  const errors: (number | null)[] = [];
  await acceptLoop(
    {
      accept: () => {
        if (!first) throw new Error("accept called again");
        first = false;
        return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
      },
    },
    () => {},
    { closed: () => false, onError: (_e, ms) => errors.push(ms) },
  );
  assert.deepEqual(errors, [null]);
});
