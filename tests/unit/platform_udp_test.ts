import assert from "node:assert/strict";
import { openUdpSocket } from "../../platform/udp.ts";
import { waitFor } from "../helpers/wait.ts";

/** A datagram socket whose receive() answers from a script, then waits until closed. */
function fakeConn(steps: (Error | string)[]) {
  let closeWaiter: ((e: Error) => void) | null = null;
  const conn = {
    addr: { transport: "udp", hostname: "::", port: 326 },
    receive(buf: Uint8Array): Promise<[Uint8Array, Deno.Addr]> {
      const s = steps.shift();
      if (s === undefined) {
        return new Promise((_, reject) => closeWaiter = reject);
      }
      if (s instanceof Error) return Promise.reject(s);
      const bytes = new TextEncoder().encode(s);
      buf.set(bytes);
      return Promise.resolve([
        buf.subarray(0, bytes.length),
        { transport: "udp", hostname: "2001:db8::9", port: 326 },
      ]);
    },
    send: () => Promise.resolve(0),
    close: () => closeWaiter?.(new Deno.errors.BadResource("closed")),
  };
  return conn as unknown as Deno.DatagramConn;
}

function until(cond: () => boolean, what: string): Promise<boolean> {
  return waitFor(cond, { what, intervalMs: 5 });
}

Deno.test("a failed receive is reported with its cause and the socket keeps receiving", async () => {
  const got: string[] = [];
  const errors: Error[] = [];
  const s = openUdpSocket({
    listen: () => fakeConn([new Error("No buffer space available"), "hello"]),
    onDatagram: (host, _port, bytes) => {
      got.push(`${host} ${new TextDecoder().decode(bytes)}`);
    },
    onError: (e) => errors.push(e),
  });
  await until(() => got.length === 1, "the datagram after the error");
  assert.deepEqual(got, ["2001:db8::9 hello"]);
  assert.equal(errors.length, 1);
  assert.match(
    errors[0].message,
    /^UDP receive on \[::\]:326 failed: No buffer space available; receiving again in 100 ms$/,
  );
  assert.match(String((errors[0].cause as Error).message), /No buffer space/);
  await s.close();
});

Deno.test("close() during the pause after a failed receive ends the loop at once", async () => {
  const errors: Error[] = [];
  const steps: (Error | string)[] = [new Error("boom")];
  const s = openUdpSocket({
    listen: () => fakeConn(steps),
    onDatagram: () => {},
    onError: (e) => errors.push(e),
  });
  await until(() => errors.length === 1, "the error");
  const t0 = Date.now();
  await s.close();
  assert.ok(Date.now() - t0 < 90, "close did not wait for the pause to end");
});
