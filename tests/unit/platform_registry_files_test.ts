import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { prepareRegistryDb } from "../../platform/registry_files.ts";

Deno.test("the registry database and its WAL are readable by their owner only", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/registry.db`;
    await prepareRegistryDb(path);
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${path}-wal`)).mode! & 0o777, 0o600);
    db.close();
    await Deno.chmod(path, 0o644); // made by an older version
    await prepareRegistryDb(path);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the registry database folder is made 0700 only when created", async () => {
  const dir = await Deno.makeTempDir();
  const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;
  try {
    await prepareRegistryDb(`${dir}/new/sub/registry.db`);
    assert.equal(await mode(`${dir}/new`), 0o700);
    assert.equal(await mode(`${dir}/new/sub`), 0o700);
    await Deno.mkdir(`${dir}/shared`);
    await Deno.chmod(`${dir}/shared`, 0o755);
    await prepareRegistryDb(`${dir}/shared/registry.db`);
    assert.equal(await mode(`${dir}/shared`), 0o755, "an existing folder is left as it is");
    assert.equal(await mode(`${dir}/shared/registry.db`), 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a WAL and shared-memory file left readable by an older version are made 0600", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/registry.db`;
  try {
    for (const f of [path, `${path}-wal`, `${path}-shm`]) {
      await Deno.writeFile(f, new Uint8Array(), { mode: 0o644 });
      await Deno.chmod(f, 0o644);
    }
    await prepareRegistryDb(path);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) {
      assert.equal((await Deno.stat(f)).mode! & 0o777, 0o600, f);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
