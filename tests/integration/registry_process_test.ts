// The registry as a separate process: SIGTERM, SIGUSR1, and kill -9 in the middle of a
// burst of issuances (nothing issued is lost, no prefix is given twice).

import assert from "node:assert/strict";
import { parseCertificate } from "../../core/cert.ts";
import { nodeCsr, openDb, registryFiles, target } from "../helpers/registry.ts";
import { freePort, reap, spawnRegistry, waitReady } from "../helpers/registry_child.ts";
import { waitFor as sharedWaitFor } from "../helpers/wait.ts";

async function waitFor(cond: () => Promise<boolean>, what: string, ms = 10000) {
  await sharedWaitFor(cond, { what, timeoutMs: ms, intervalMs: 50 });
}

const spawn = (config: object, opts: object = {}) => spawnRegistry(config, opts);

Deno.test("SIGUSR1 reopens the log file and SIGTERM stops the registry cleanly", async () => {
  const files = await registryFiles();
  const port = freePort();
  const child = spawn({ ...files.config, port, verbose: 2 });
  try {
    await waitReady(port);
    const log = files.config.logfile!;
    await Deno.rename(log, log + ".1");
    child.kill("SIGUSR1");
    await waitFor(async () => {
      try {
        return (await Deno.readTextFile(log)).includes("Log file reopened");
      } catch {
        return false;
      }
    }, "a new log file after SIGUSR1");
    const r = await fetch(`http://127.0.0.1:${port}/getCa`);
    await r.body?.cancel();
    await waitFor(
      async () => (await Deno.readTextFile(log)).includes("GET getCa 200"),
      "request logged",
    );
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0);
    assert.match(await Deno.readTextFile(log), /Received SIGTERM: stopping[\s\S]*Registry stopped/);
  } finally {
    await reap(child);
    await files.cleanup();
  }
});

/** `p`, or a failure saying what never happened after `ms`. */
async function within<T>(p: Promise<T>, what: string, ms = 10000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`never happened: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a fatal clean-up error stops the registry with status 1 and one line naming it", async () => {
  const files = await registryFiles({ gracePeriod: 10 });
  const port = freePort();
  const clockOffsetFile = `${files.dir}/clock-offset`;
  const child = spawn({ ...files.config, port, verbose: 2 }, { clockOffsetFile });
  try {
    await waitReady(port);
    const base = `http://127.0.0.1:${port}`;
    const cert = await fetch(
      base + target("requestCertificate", [
        ["token", ""],
        ["req", (await nodeCsr(0)).csr],
      ]),
    );
    await cert.body?.cancel();
    assert.equal(cert.status, 200, "the first certificate makes the registry node");
    // A year later the registry node's certificate is long expired: the clean-up that the next
    // change schedules finds the registry cannot go on.
    await Deno.writeTextFile(clockOffsetFile, String(366 * 86400));
    const token = await fetch(base + target("addToken", [["email", "a@b"], ["token", "t"]]));
    await token.body?.cancel();
    const status = await within(child.status, "the registry stopped after the fatal error");
    assert.equal(status.code, 1);
    const cause = /registry node 0000000000000000 expired more than the grace period ago/;
    const stderr = (await new Response(child.stderr).text()).split("\n");
    assert.equal(stderr.filter((l) => cause.test(l)).length, 1, stderr.join("\n"));
    const log = (await Deno.readTextFile(files.config.logfile!)).split("\n");
    assert.equal(log.filter((l) => cause.test(l)).length, 1, log.join("\n"));
    assert.ok(!log.some((l) => /Registry stopped$/.test(l)), "no clean-stop line");
  } finally {
    await reap(child);
    await files.cleanup();
  }
});

Deno.test("a registry logging to standard error that cannot start says why once", async () => {
  const files = await registryFiles();
  const missing = `${files.dir}/missing.crt`;
  const child = spawn({ ...files.config, ca: missing, logfile: "-" });
  try {
    const status = await within(child.status, "the registry gave up starting");
    assert.equal(status.code, 1);
    const stderr = (await new Response(child.stderr).text()).split("\n");
    const reports = stderr.filter((l) => l.includes(`Cannot read CA certificate "${missing}"`));
    assert.equal(reports.length, 1, stderr.join("\n"));
    assert.match(reports[0], /Cannot start the registry: .*No such file/);
  } finally {
    await reap(child);
    await files.cleanup();
  }
});

Deno.test("a registry whose log file is on a full disk keeps answering and says so once", async () => {
  const files = await registryFiles();
  const port = freePort();
  const child = spawn({ ...files.config, port, verbose: 2, logfile: "/dev/full" });
  try {
    await waitReady(port);
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/getCa`);
      await r.body?.cancel();
      assert.equal(r.status, 200, "a log line that cannot be written must not fail the request");
    }
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    const stderr = await new Response(child.stderr).text();
    const reports = stderr.split("\n").filter((l) => l.includes('log file "/dev/full"'));
    assert.equal(reports.length, 1, stderr);
    assert.match(reports[0], /No space left on device/);
  } finally {
    await reap(child);
    await files.cleanup();
  }
});

Deno.test("kill -9 during issuance loses no issued certificate and never gives a prefix twice", async () => {
  const files = await registryFiles();
  const csrs = await Promise.all([0, 1, 2, 3].map((i) => nodeCsr(i).then((c) => c.csr)));
  const issued: string[] = [];
  try {
    for (let round = 0; round < 2; round++) {
      const port = freePort();
      const child = spawn({ ...files.config, port });
      try {
        await waitReady(port);
        let stop = false;
        const worker = async (i: number) => {
          while (!stop) {
            try {
              const url = `http://127.0.0.1:${port}` +
                target("requestCertificate", [["token", ""], ["req", csrs[i]]]);
              const r = await fetch(url);
              if (r.status === 200) issued.push(await r.text());
              else await r.body?.cancel();
            } catch {
              return; // the registry died
            }
          }
        };
        const workers = [0, 1, 2, 3].map(worker);
        const before = issued.length;
        await waitFor(() => Promise.resolve(issued.length >= before + 40), "40 issuances");
        child.kill("SIGKILL");
        await child.status;
        stop = true;
        await Promise.all(workers);
      } finally {
        await reap(child);
      }
    }
    const db = openDb(files.config.db!);
    try {
      const rows = db.sql.prepare("SELECT prefix, cert FROM cert WHERE cert IS NOT NULL").all() as {
        prefix: string;
        cert: string;
      }[];
      const stored = new Map(rows.map((r) => [r.prefix, r.cert]));
      const prefixes = new Set<string>();
      for (const pem of issued) {
        const cert = parseCertificate(pem);
        const prefix = BigInt(cert.cn!.split("/")[0]).toString(2).padStart(16, "0");
        assert.ok(!prefixes.has(prefix), `prefix ${cert.cn} handed out twice`);
        prefixes.add(prefix);
        assert.equal(stored.get(prefix), pem, `certificate ${cert.cn} lost`);
      }
      const serials = issued.map((p) => parseCertificate(p).serial);
      assert.equal(new Set(serials).size, serials.length, "serials are unique");
      assert.ok(issued.length >= 80);
    } finally {
      db.close();
    }
  } finally {
    await files.cleanup();
  }
});

/** Whether process `pid` catches SIGTERM (bit 15 of SigCgt in /proc/PID/status). */
function catchesSigterm(pid: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 14n)) !== 0n;
  } catch {
    return false;
  }
}

Deno.test("a SIGTERM as soon as `re6st registry` can catch it stops it with status 0 and a log line at the default verbosity", async () => {
  const files = await registryFiles();
  const port = freePort();
  const c = files.config;
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "registry", "--ca", c.ca, "--key", c.key, "--db", c.db!]
      .concat(["--port", String(port), "-4", "127.0.0.1", "-6", "", "-l", c.logfile!])
      .concat(["-r", files.dir]),
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    await sharedWaitFor(() => catchesSigterm(child.pid), {
      what: "the registry catching SIGTERM",
      intervalMs: 1,
      timeoutMs: 30_000,
    });
    child.kill("SIGTERM");
    const status = await child.status;
    const log = await Deno.readTextFile(c.logfile!);
    assert.equal(status.code, 0, log);
    // Caught before the daemon's modules loaded, the signal arrived while it started; the
    // line shows at the default verbosity.
    assert.match(log, /WARNING Received SIGTERM while starting: stopping/);
  } finally {
    await reap(child);
    await files.cleanup();
  }
});

Deno.test("an uncaught error reaches registry.log as well as stderr", async () => {
  const files = await registryFiles();
  const port = freePort();
  const trigger = `${files.dir}/throw-now`;
  const child = spawn({ ...files.config, port }, { throwWhenFile: trigger });
  try {
    await waitReady(port);
    await Deno.writeTextFile(trigger, "");
    const status = await child.status;
    assert.equal(status.code, 1);
    const stderr = await new Response(child.stderr).text();
    assert.match(stderr, /test: an uncaught error/);
    const log = await Deno.readTextFile(files.config.logfile!);
    assert.match(log, /ERROR Registry stopping on an unexpected error: test: an uncaught error/);
  } finally {
    await reap(child);
    await files.cleanup();
  }
});

Deno.test("under umask 000 the log folder is 0700, the log 0640, the mbox and database 0600; network text is escaped", async () => {
  const files = await registryFiles();
  const port = freePort();
  const dir = files.dir;
  const mbox = `${dir}/mail/tokens.mbox`;
  await Deno.mkdir(`${dir}/mail`);
  const child = spawnRegistry(
    {
      ...files.config,
      port,
      verbose: 3,
      logfile: `${dir}/logs/registry.log`,
      db: `${dir}/state/registry.db`,
      mailhost: mbox,
    },
    {},
    { umask: "000" },
  );
  const mode = async (p: string) => ((await Deno.stat(p)).mode! & 0o777).toString(8);
  try {
    await waitReady(port);
    const ask = async (email: string) => {
      const r = await fetch(
        `http://127.0.0.1:${port}${target("requestToken", [["email", email]])}`,
      );
      await r.body?.cancel();
      return r.status;
    };
    assert.equal(await ask("a@x.example"), 204);
    assert.equal(await ask("b@x.example\u001b[2J\u000bBcc: c@y.example"), 400);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    assert.deepEqual(
      await Promise.all([
        mode(`${dir}/logs`),
        mode(`${dir}/logs/registry.log`),
        mode(mbox),
        mode(`${dir}/state`),
        mode(`${dir}/state/registry.db`),
      ]),
      ["700", "640", "600", "700", "600"],
    );
    const log = await Deno.readTextFile(`${dir}/logs/registry.log`);
    assert.match(log, /invalid e-mail address .*b@x\.example/);
    // deno-lint-ignore no-control-regex -- control characters are what it looks for
    assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f]/.test(log), "no raw control character");
    const mail = await Deno.readTextFile(mbox);
    assert.equal((mail.match(/^To: /gm) ?? []).length, 1);
    assert.match(mail, /^To: a@x\.example$/m);
  } finally {
    await reap(child);
    await files.cleanup();
  }
});
