// scripts/install into a temporary DESTDIR: twice gives the same files, the installed re6st
// runs, its units pass `systemd-analyze verify` (and stay confined), --bin swaps the source
// tree for a binary, and --uninstall leaves only the folders that hold data.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRunner } from "../../platform/runner.ts";

const INSTALL = fileURLToPath(new URL("../../scripts/install", import.meta.url));
const PREFIX = "/usr/local";
const UNITS = ["re6st-node.service", "re6st-registry.service"];
const hasSystemdAnalyze = (await createRunner().run(["sh", "-c", "command -v systemd-analyze"], {
  ok: "any",
})).code === 0;

/** Runs scripts/install with DESTDIR=`dest`; returns its exit code and standard error. */
async function install(dest: string, ...args: string[]): Promise<{ code: number; err: string }> {
  const r = await new Deno.Command(INSTALL, {
    args,
    env: { DESTDIR: dest },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr) };
}

/** Every path below `root` with its type and mode, and the SHA-256 of files (not caches). */
async function tree(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    const st = await Deno.lstat(path);
    const rel = path.slice(root.length);
    const mode = (st.mode! & 0o7777).toString(8);
    if (e.isDirectory) {
      out.push(`${rel}/ ${mode}`);
      // Deno's module cache: present, its databases change as Deno uses them.
      if (!rel.endsWith("/deno-dir")) out.push(...await tree(root, path));
    } else if (e.isFile) {
      const sum = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
      out.push(`${rel} ${mode} ${Array.from(new Uint8Array(sum), (b) => b.toString(16)).join("")}`);
    } else out.push(`${rel} -> ${await Deno.readLink(path)}`);
  }
  return out.sort();
}

async function files(root: string): Promise<string[]> {
  return (await tree(root)).filter((l) => !/^\S+\/ /.test(l)).map((l) => l.split(" ")[0]);
}

Deno.test("scripts/install twice gives the same files, the installed re6st runs, and --uninstall keeps only data", async () => {
  const dest = await Deno.makeTempDir({ prefix: "re6st-install-" });
  try {
    const first = await install(dest, "--source");
    assert.equal(first.code, 0, first.err);
    const once = await tree(dest);
    const second = await install(dest, "--source");
    assert.equal(second.code, 0, second.err);
    assert.deepEqual(await tree(dest), once, "a second install changes nothing");

    const bin = join(dest, PREFIX, "bin/re6st");
    const version = await new Deno.Command(bin, { args: ["--version"], env: {}, clearEnv: true })
      .output();
    assert.equal(version.code, 0, new TextDecoder().decode(version.stderr));
    assert.match(new TextDecoder().decode(version.stdout), /^re6st \S+ \(protocol 10\)\n$/);

    assert.deepEqual((await files(dest)).filter((f) => !f.startsWith(`${PREFIX}/lib/re6st/`)), [
      "/etc/logrotate.d/re6stnet",
      `${PREFIX}/bin/re6st`,
      ...UNITS.map((u) => `${PREFIX}/lib/systemd/system/${u}`),
    ]);
    assert.ok(once.includes("/var/lib/re6stnet/ 700"), "the state folder is private");
    for (const u of UNITS) {
      const text = await Deno.readTextFile(join(dest, PREFIX, "lib/systemd/system", u));
      assert.match(text, new RegExp(`^ExecStart=${PREFIX}/bin/re6st `, "m"), u);
    }

    // Data in a folder: kept by --uninstall, with everything else gone.
    await Deno.writeTextFile(join(dest, "etc/re6stnet/cert.key"), "secret", { mode: 0o600 });
    const gone = await install(dest, "--uninstall");
    assert.equal(gone.code, 0, gone.err);
    assert.match(gone.err, /kept \S+\/etc\/re6stnet \(not empty\)/);
    assert.deepEqual(await files(dest), ["/etc/re6stnet/cert.key"]);
    for (const d of ["var/lib/re6stnet", "var/log/re6stnet", `${PREFIX}/lib/re6st`]) {
      assert.equal(await Deno.stat(join(dest, d)).then(() => true, () => false), false, d);
    }
  } finally {
    await Deno.remove(dest, { recursive: true });
  }
});

Deno.test("scripts/install --bin installs that binary in place of an installed source tree", async () => {
  const dest = await Deno.makeTempDir({ prefix: "re6st-install-" });
  try {
    assert.equal((await install(dest, "--source", "--prefix", "/opt/re6st")).code, 0);
    assert.ok(await Deno.stat(join(dest, "opt/re6st/lib/re6st/main.ts")));
    const stub = join(dest, "re6st-stub");
    await Deno.writeTextFile(stub, "#!/bin/sh\necho stub\n", { mode: 0o755 });
    const r = await install(dest, "--bin", stub, "--prefix", "/opt/re6st");
    assert.equal(r.code, 0, r.err);
    assert.equal(
      await Deno.readTextFile(join(dest, "opt/re6st/bin/re6st")),
      "#!/bin/sh\necho stub\n",
    );
    assert.equal(await Deno.stat(join(dest, "opt/re6st/lib/re6st")).then(() => 1, () => 0), 0);
    // Other prefixes get their units where systemd looks for the administrator's.
    const unit = await Deno.readTextFile(join(dest, "etc/systemd/system/re6st-node.service"));
    assert.match(unit, /^ExecStart=\/opt\/re6st\/bin\/re6st node /m);

    const bad = await install(dest, "--bin", join(dest, "missing"));
    assert.equal(bad.code, 1);
    assert.match(bad.err, /missing is not an executable file/);
    const usage = await install(dest, "--frobnicate");
    assert.equal(usage.code, 2);
    assert.equal(usage.err.trim(), 'install: unknown option "--frobnicate" (try --help)');
  } finally {
    await Deno.remove(dest, { recursive: true });
  }
});

Deno.test({
  name: "the installed units pass systemd-analyze verify and keep their confinement",
  ignore: !hasSystemdAnalyze,
  async fn() {
    const dest = await Deno.makeTempDir({ prefix: "re6st-install-" });
    try {
      assert.equal((await install(dest, "--source")).code, 0);
      // verify wants ExecStart's program to exist: point the units at the staged one.
      const bin = join(dest, PREFIX, "bin/re6st");
      const paths = [];
      for (const u of UNITS) {
        const path = join(dest, u);
        const text = await Deno.readTextFile(join(dest, PREFIX, "lib/systemd/system", u));
        await Deno.writeTextFile(path, text.replaceAll(`${PREFIX}/bin/re6st`, bin));
        paths.push(path);
      }
      const runner = createRunner();
      const verify = await runner.run(["systemd-analyze", "verify", ...paths], { ok: "any" });
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(verify.stderr.trim(), "", "systemd-analyze verify has nothing to say");
      // Exposure 0 (confined) to 10 (unsafe); a unit with no confinement scores 9.6. The
      // node is 3.9 and the registry 3.3 as written; --threshold is in tenths.
      for (const path of paths) {
        const r = await runner.run(
          ["systemd-analyze", "security", "--offline=yes", "--threshold=45", path],
          { ok: "any" },
        );
        assert.equal(r.code, 0, `exposure of ${path} above 4.5:\n${r.stdout.split("\n").at(-2)}`);
      }
    } finally {
      await Deno.remove(dest, { recursive: true });
    }
  },
});
