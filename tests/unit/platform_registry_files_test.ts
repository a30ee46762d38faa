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
