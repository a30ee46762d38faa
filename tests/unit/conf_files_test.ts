// platform/files.ts: the real ConfFiles replaces files only when their content is complete.

import assert from "node:assert/strict";
import { join } from "node:path";
import { realConfFiles } from "../../platform/files.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "re6st-conf-files-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const names = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();

Deno.test("a committed file replaces the old one with the exact mode asked", async () => {
  await withDir(async (dir) => {
    const files = realConfFiles();
    const path = join(dir, "cert.key");
    await Deno.writeTextFile(path, "old");
    const staged = await files.stage(path, 0o600);
    assert.equal(await Deno.readTextFile(path), "old");
    await staged.commit("new");
    assert.equal(await Deno.readTextFile(path), "new");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(await names(dir), ["cert.key"]);
  });
});

Deno.test("a discarded file leaves the old one and no temporary file", async () => {
  await withDir(async (dir) => {
    const files = realConfFiles();
    const path = join(dir, "cert.crt");
    await Deno.writeTextFile(path, "old");
    const staged = await files.stage(path, 0o644);
    await staged.discard();
    assert.equal(await Deno.readTextFile(path), "old");
    assert.deepEqual(await names(dir), ["cert.crt"]);
  });
});

Deno.test("reading a missing file gives null; staging in a missing folder names the file", async () => {
  await withDir(async (dir) => {
    const files = realConfFiles();
    assert.equal(await files.read(join(dir, "nope")), null);
    const path = join(dir, "no", "cert.crt");
    await assert.rejects(files.stage(path, 0o644), new RegExp(`Cannot write "${path}"`));
    await files.ensureDir(join(dir, "a", "b"));
    assert.ok((await Deno.stat(join(dir, "a", "b"))).isDirectory);
  });
});
