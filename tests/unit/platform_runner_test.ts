import assert from "node:assert/strict";
import { CommandError, createRunner, inNetns, recordingRunner } from "../../platform/runner.ts";
import { waitFor } from "../helpers/wait.ts";

const sh = (script: string) => ["sh", "-c", script];

Deno.test("the runner returns output of a command that exits with an expected code", async () => {
  const r = await createRunner().run(sh("echo out; echo err >&2; exit 3"), { ok: [0, 3] });
  assert.deepEqual(r, {
    argv: sh("echo out; echo err >&2; exit 3"),
    code: 3,
    stdout: "out\n",
    stderr: "err\n",
  });
});

Deno.test("an unexpected exit code raises an error carrying argv, code and stderr", async () => {
  const err = await createRunner().run(sh("echo 'RTNETLINK answers: File exists' >&2; exit 2"))
    .then(() => null, (e) => e);
  assert.ok(err instanceof CommandError);
  assert.deepEqual(err.argv, sh("echo 'RTNETLINK answers: File exists' >&2; exit 2"));
  assert.equal(err.code, 2);
  assert.equal(err.stderr, "RTNETLINK answers: File exists\n");
  assert.match(err.message, /failed with exit code 2: RTNETLINK answers: File exists$/);
});

Deno.test("a program that does not exist raises a CommandError with code -1", async () => {
  await assert.rejects(createRunner().run(["/nonexistent/re6st-prog"]), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, -1);
    assert.match(e.message, /could not run/);
    return true;
  });
});

Deno.test("commands run with LC_ALL=C, extra environment and standard input", async () => {
  const r = await createRunner().run(sh('echo "$LC_ALL $FOO"; cat'), {
    env: { FOO: "bar", LC_ALL: "fr_FR.UTF-8" },
    stdin: "in\n",
  });
  assert.equal(r.stdout, "C bar\nin\n");
});

Deno.test("ok: any accepts every exit code", async () => {
  assert.equal((await createRunner().run(["false"], { ok: "any" })).code, 1);
});

Deno.test("a command that outlives its timeout is killed and reported", async () => {
  await assert.rejects(
    createRunner().run(["sleep", "5"], { timeoutMs: 100 }),
    /timed out after 100 ms/,
  );
});

Deno.test("a namespace-bound runner wraps argv in ip netns exec", () => {
  assert.deepEqual(inNetns("r6-x", ["ip", "link"]), ["ip", "netns", "exec", "r6-x", "ip", "link"]);
  assert.deepEqual(inNetns(undefined, ["ip", "link"]), ["ip", "link"]);
});

Deno.test("a spawned child writes stdout and stderr to its log file", async () => {
  const log = await Deno.makeTempFile();
  try {
    const c = createRunner().spawn(sh("echo one; echo two >&2"), {
      stdout: { append: log },
      stderr: { append: log },
    });
    assert.ok(c.pid > 0);
    assert.deepEqual(await c.status, { code: 0, signal: null, success: true });
    const text = await Deno.readTextFile(log);
    assert.deepEqual(text.split("\n").sort(), ["", "one", "two"]);
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("stop sends SIGKILL to a child that ignores SIGTERM", async () => {
  const c = createRunner().spawn(sh("trap '' TERM; echo ready; while :; do sleep 0.05; done"), {
    stdout: "piped",
  });
  const reader = c.stdout!.getReader();
  const first = await reader.read();
  assert.equal(new TextDecoder().decode(first.value), "ready\n");
  reader.releaseLock();
  const t0 = Date.now();
  const st = await c.stop(200);
  await c.stdout!.cancel();
  assert.equal(st.signal, "SIGKILL");
  assert.ok(Date.now() - t0 < 3000);
  c.kill(); // after exit: no effect, no throw
});

Deno.test("the recording runner records calls and fails on unexpected codes", async () => {
  const r = recordingRunner(
    (argv) => argv[0] === "false" ? { code: 1, stderr: "no" } : undefined,
    "ns1",
  );
  await r.run(["ip", "link"]);
  await assert.rejects(r.run(["false"]), /exit code 1: no/);
  assert.equal((await r.run(["false"], { ok: [1] })).code, 1);
  const child = r.spawn(["babeld"]);
  child.kill();
  assert.equal((await child.status).signal, "SIGTERM");
  assert.deepEqual(r.lines(), [
    "ip netns exec ns1 ip link",
    "ip netns exec ns1 false",
    "ip netns exec ns1 false",
    "ip netns exec ns1 babeld",
  ]);
});

/** Whether `pid` is a live process (a zombie is dead). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function waitDead(pid: number, what: string): Promise<boolean> {
  return waitFor(() => !alive(pid), { what, intervalMs: 20 });
}

/** Pids of live processes whose command line is exactly `argv`. */
function processesRunning(argv: string[]): number[] {
  const want = argv.join("\0") + "\0";
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`) === want) out.push(Number(e.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out.filter(alive);
}

Deno.test("a log file that cannot be opened starts nothing", () => {
  const argv = ["sleep", "7.31415"];
  assert.throws(
    () => createRunner().spawn(argv, { stdout: { append: "/nonexistent-re6st/x.log" } }),
    (e: unknown) => e instanceof CommandError && /cannot open its log file/.test(e.message),
  );
  const left = processesRunning(argv);
  for (const pid of left) Deno.kill(pid, "SIGKILL");
  assert.deepEqual(left, [], "no child left running");
});

Deno.test("stopping a process-group child also stops what its shell started", async () => {
  const c = createRunner().spawn(sh("sleep 30 & echo $!; wait"), {
    stdout: "piped",
    processGroup: true,
  });
  const reader = c.stdout!.getReader();
  const grandchild = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  try {
    assert.ok(alive(grandchild));
    await c.stop(1000);
    await c.stdout!.cancel();
    await waitDead(grandchild, "the shell's background sleep to be gone");
  } finally {
    if (alive(grandchild)) Deno.kill(grandchild, "SIGKILL");
  }
});

Deno.test("a stop signal ends a process-group command and what it started", async () => {
  const dir = await Deno.makeTempDir();
  const stop = new AbortController();
  let grandchild = 0;
  try {
    const run = createRunner().run(sh(`sleep 30 & echo $! > ${dir}/pid; wait`), {
      ok: "any",
      processGroup: true,
      signal: stop.signal,
    });
    grandchild = await waitFor(
      async () => Number(await Deno.readTextFile(`${dir}/pid`).catch(() => "0")),
      { what: "the shell to write its background sleep's pid", intervalMs: 10 },
    );
    assert.ok(grandchild > 0 && alive(grandchild));
    stop.abort();
    await assert.rejects(run, /stopped before it finished/);
    await waitDead(grandchild, "the shell's background sleep to be gone");
  } finally {
    if (grandchild && alive(grandchild)) Deno.kill(grandchild, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
