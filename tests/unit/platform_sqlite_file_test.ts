import assert from "node:assert/strict";
import { openPrivateDatabase } from "../../platform/sqlite_file.ts";

Deno.test("a new database file is created readable by its owner only", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const db = openPrivateDatabase(`${dir}/cache.db`);
    db.exec("CREATE TABLE t (x)");
    db.close();
    assert.equal(Deno.statSync(`${dir}/cache.db`).mode! & 0o777, 0o600);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an existing world-readable database keeps its data and becomes mode 0600", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/cache.db`;
    const first = openPrivateDatabase(path);
    first.exec("CREATE TABLE t (x); INSERT INTO t VALUES (42)");
    first.close();
    Deno.chmodSync(path, 0o644);
    const db = openPrivateDatabase(path);
    assert.deepEqual(db.prepare("SELECT x FROM t").all().map((r) => r.x), [42]);
    db.close();
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
