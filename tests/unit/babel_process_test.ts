// platform/babeld.ts without root: a stand-in program plays babeld (real babeld runs only in
// tests/netns/babel_test.ts, inside namespaces).

import assert from "node:assert/strict";
import { join } from "node:path";
import type { BabelConfig } from "../../core/babel/config.ts";
import { memoryLogger } from "../../core/log.ts";
import { BabeldError, readLogTail, startBabeld } from "../../platform/babeld.ts";
import { createRunner, type Runner } from "../../platform/runner.ts";

/** A runner that ignores babeld's argv and runs `argv` instead (same spawn options). */
function standIn(argv: string[]): Runner {
  const real = createRunner();
  return { run: real.run, spawn: (_argv, opts) => real.spawn(argv, opts) };
}

function config(dir: string): BabelConfig {
  return {
    args: ["-h", "15"],
    configText: "# secret statements\n",
    tunnelParams: "type tunnel",
    paths: {
      config: join(dir, "babeld.conf"),
      socket: join(dir, "babeld.sock"),
      state: join(dir, "babeld.state"),
      log: join(dir, "babeld.log"),
    },
  };
}

/** A Deno program answering like babeld's local socket at `path` until SIGTERM. */
function fakeBabeld(path: string): string[] {
  return [
    Deno.execPath(),
    "eval",
    `const l = Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });
     console.log("fake babeld listening");
     Deno.addSignalListener("SIGTERM", () => { Deno.removeSync(${
      JSON.stringify(path)
    }); Deno.exit(0); });
     for await (const c of l) {
       await c.write(new TextEncoder().encode("BABEL 1.0\\nversion babeld-1.12.1\\nok\\n"));
       c.close();
     }`,
  ];
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "r6-babeld-unit-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the log tail holds only the last lines written after the start offset", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "x.log");
    await Deno.writeTextFile(log, "old 1\nold 2\n");
    const from = (await Deno.stat(log)).size;
    await Deno.writeTextFile(log, Array.from({ length: 30 }, (_, i) => `new ${i}`).join("\n"), {
      append: true,
    });
    const tail = await readLogTail(log, from, 3);
    assert.deepEqual(tail, ["new 27", "new 28", "new 29"]);
    assert.deepEqual(await readLogTail(log, from, 100).then((l) => l[0]), "new 0");
    assert.deepEqual(await readLogTail(join(dir, "missing.log")), []);
  });
});

Deno.test("babeld is started once its socket answers, replacing a stale socket, and stopped", async () => {
  await withDir(async (dir) => {
    const cfg = config(dir);
    // A file nobody listens on, in place of the socket a killed babeld leaves behind.
    await Deno.writeTextFile(cfg.paths.socket, "");
    const log = memoryLogger();
    const b = await startBabeld({
      runner: standIn(fakeBabeld(cfg.paths.socket)),
      config: cfg,
      log,
    });
    try {
      assert.equal((await Deno.stat(cfg.paths.config)).mode! & 0o777, 0o600);
      assert.equal(await Deno.readTextFile(cfg.paths.config), cfg.configText);
      assert.ok(log.lines.some((l) => l.includes(`local socket ${cfg.paths.socket}`)));
      // A second babeld on the same socket is refused.
      await assert.rejects(
        startBabeld({ runner: standIn(["true"]), config: cfg }),
        /already answers on .*babeld\.sock/,
      );
    } finally {
      const exit = await b.stop(2000);
      assert.equal(exit.requested, true);
      assert.deepEqual(exit.lastLog, ["fake babeld listening"]);
    }
  });
});

Deno.test("an exit during start-up is an error carrying babeld's last log lines", async () => {
  await withDir(async (dir) => {
    const cfg = config(dir);
    await Deno.writeTextFile(cfg.paths.log, "line of an earlier run\n");
    const log = memoryLogger();
    const runner = standIn([
      "sh",
      "-c",
      'echo "Couldn\'t parse configuration from file x (error at line 3)." >&2; exit 1',
    ]);
    await assert.rejects(startBabeld({ runner, config: cfg, log }), (e: Error) => {
      assert.ok(e instanceof BabeldError);
      assert.match(e.message, /exited during start-up \(code 1\)/);
      assert.match(e.message, /error at line 3/);
      assert.doesNotMatch(e.message, /earlier run/);
      return true;
    });
    assert.ok(log.lines.some((l) => /ERROR babeld \(pid \d+\) exited unexpectedly/.test(l)));
  });
});

Deno.test("a babeld that never opens its socket is stopped after the start timeout", async () => {
  await withDir(async (dir) => {
    const cfg = config(dir);
    await assert.rejects(
      startBabeld({ runner: standIn(["sleep", "30"]), config: cfg, startTimeoutMs: 300 }),
      /did not open .*babeld\.sock within 300 ms/,
    );
  });
});
