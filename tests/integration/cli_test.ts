// The program as people run it: main.ts in a child process, real registry, real enrollment.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { recordingIo } from "../../cmd/io.ts";
import { createCa } from "../../core/cert.ts";
import { SOFTWARE_VERSION } from "../../core/constants.ts";
import { COMMANDS, main } from "../../main.ts";
import { registryFiles } from "../helpers/registry.ts";
import { waitFor } from "../helpers/wait.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

async function re6st(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("every subcommand prints its help and exits 0", async () => {
  for (const cmd of ["node", "registry", "conf", "status"]) {
    const r = await re6st([cmd, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: re6st ${cmd}`));
  }
  const top = await re6st(["--help"]);
  assert.match(top.stdout, /registry.*\n.*conf.*\n.*node.*\n.*status/);
  assert.doesNotMatch(top.stdout, /ovpn-hook/);
});

Deno.test("-V and --version print the version and exit 0, also after node", async () => {
  const runs = await Promise.all(
    [["-V"], ["--version"], ["node", "-V"], ["node", "--version"]].map((a) => re6st(a)),
  );
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `re6st ${SOFTWARE_VERSION} (protocol 10)\n`);
    assert.equal(r.stderr, "");
  }
});

Deno.test("re6st without a command prints the usage and exits 2", async () => {
  const r = await re6st([]);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /^Usage: re6st <command> \[options\]/);
  assert.match(r.stdout, /Commands:\n {2}registry/);
});

Deno.test("bad command lines get one line naming the problem and exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^re6st: unknown command "frobnicate"/],
    [
      ["registry", "--port", "eighty", "--ca", "x", "--key", "y"],
      /--port: invalid integer "eighty"/,
    ],
    [["node", "--registry"], /--registry expects a value/],
    [["conf"], /missing required option --registry/],
    [["status", "--bogus"], /unknown option --bogus/],
  ];
  for (const [args, pattern] of cases) {
    const r = await re6st(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
});

Deno.test("a registry started from the command line enrolls a machine with re6st conf", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "re6st-cli-" });
  const ca = await createCa({
    network: "001000000000000100001101101110000000000001000010",
    bits: 1024,
  });
  Deno.writeTextFileSync(`${dir}/ca.crt`, ca.certPem);
  Deno.writeTextFileSync(`${dir}/ca.key`, ca.keyPem, { mode: 0o600 });
  const port = 20000 + Math.floor(Math.random() * 20000);
  Deno.writeTextFileSync(
    `${dir}/re6st-registry.conf`,
    `ca ca.crt\nkey ca.key\ndb registry.db\nport ${port}\n4 127.0.0.1\n6 ''\n` +
      `anonymous-prefix-length 16\nlogfile registry.log\nrun ${dir}/run\nverbose 2\n`,
  );
  const registry = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "registry", `@${dir}/re6st-registry.conf`],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    // Until the registry listens, conf cannot connect: try again then, and only then.
    const conf = await waitFor(async () => {
      const r = await re6st(["conf", "--registry", `http://127.0.0.1:${port}/`, "--anonymous"]
        .concat(["-d", `${dir}/n1`]));
      return r.code === 0 || !/connect|refused/i.test(r.stderr) ? r : null;
    }, { what: "re6st conf to reach the registry", timeoutMs: 20_000, intervalMs: 200 });
    assert.equal(conf.code, 0, conf.stderr);
    assert.match(conf.stdout, /Your subnet: 2001:db8:42::\/64 \(CN=0\/16\)/);
    for (const f of ["ca.crt", "cert.crt", "cert.key", "re6stnet.conf"]) {
      assert.ok(Deno.statSync(`${dir}/n1/${f}`).isFile, f);
    }
    assert.equal(Deno.statSync(`${dir}/n1/cert.key`).mode! & 0o777, 0o600);
    assert.match(
      Deno.readTextFileSync(`${dir}/n1/re6stnet.conf`),
      /^registry http:\/\/127\.0\.0\.1/m,
    );
    assert.match(Deno.readTextFileSync(`${dir}/registry.log`), /requestCertificate 200/);
    registry.kill("SIGTERM");
    assert.equal((await registry.status).code, 0, "the registry exits 0 on SIGTERM");
    assert.match(Deno.readTextFileSync(`${dir}/registry.log`), /Registry stopped/);
  } finally {
    try {
      registry.kill("SIGTERM");
    } catch { /* already stopped */ }
    const status = await registry.status;
    const stderr = await new Response(registry.stderr).text();
    if (!status.success) console.error(`registry exited with ${status.code}: ${stderr}`);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a failure with nested causes reaches the operator as one line ending with the reason", async () => {
  COMMANDS["fail-test"] = {
    summary: "test only",
    hidden: true,
    load: () =>
      Promise.resolve({
        run: () => {
          const os = new Deno.errors.PermissionDenied("Permission denied (os error 13)");
          const open = new Error('Cannot open "/var/lib/re6stnet/cache.db"', { cause: os });
          return Promise.reject(new Error("Cannot load the peer cache", { cause: open }));
        },
      }),
  };
  try {
    const io = recordingIo();
    assert.equal(await main(["fail-test"], io), 1);
    assert.deepEqual(io.stderr, [
      're6st fail-test: Cannot load the peer cache: Cannot open "/var/lib/re6stnet/cache.db": ' +
      "Permission denied (os error 13)",
    ]);
  } finally {
    delete COMMANDS["fail-test"];
  }
});

Deno.test("a registry on a busy port says the address is in use, in one line", async () => {
  const files = await registryFiles();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const c = files.config;
    const io = recordingIo();
    const args = ["--ca", c.ca, "--key", c.key, "--db", c.db!, "--logfile", c.logfile!];
    const port = String((busy.addr as Deno.NetAddr).port);
    const code = await main(["registry", ...args, "--port", port, "-4", "127.0.0.1", "-6", ""], io);
    assert.equal(code, 1);
    assert.equal(io.stderr.length, 1, io.stderr.join("\n"));
    assert.match(
      io.stderr[0],
      new RegExp(`port ${port} of 127\\.0\\.0\\.1: Address already in use`),
    );
  } finally {
    busy.close();
    await files.cleanup();
  }
});
