import assert from "node:assert/strict";
import { cnFromPrefix } from "../../core/addressing.ts";
import {
  allocatePrefix,
  AllocationError,
  freePrefix,
  mergeFreeBlocks,
  RESERVED,
  treeRows,
} from "../../core/registry/allocation.ts";
import {
  checkCommunitiesAgainstTree,
  CommunityError,
  parseCommunities,
  selectCommunity,
} from "../../core/registry/communities.ts";
import { SubjectSerials } from "../../core/registry/cert_index.ts";
import { createTableSql, type RegistryDb } from "../../core/registry/db.ts";
import { openDb } from "../helpers/registry.ts";
import {
  deleteToken,
  expireTokens,
  findToken,
  insertToken,
  randomToken,
  TokenExistsError,
} from "../../core/registry/tokens.ts";

function take(db: RegistryDb, len: number, community = "", max = 80): string {
  return db.tx(() => {
    const p = allocatePrefix(db, len, community, max);
    db.sql.prepare("UPDATE cert SET cert = 'x' WHERE prefix = ?").run(p);
    return p;
  });
}

function withDb(fn: (db: RegistryDb) => void) {
  const db = openDb(":memory:");
  try {
    fn(db);
  } finally {
    db.close();
  }
}

Deno.test("creates the tables with the reference's exact CREATE TABLE texts", () => {
  withDb((db) => {
    const rows = db.sql.prepare("SELECT name, sql FROM sqlite_master WHERE type='table'").all();
    const byName = Object.fromEntries(rows.map((r) => [r.name, r.sql]));
    assert.equal(
      byName.token,
      "CREATE TABLE token (\n  token TEXT PRIMARY KEY NOT NULL,\n  email TEXT NOT NULL,\n" +
        "  prefix_len INTEGER NOT NULL,\n  date INTEGER NOT NULL)",
    );
    assert.equal(
      byName.config,
      "CREATE TABLE config (\n  name TEXT PRIMARY KEY NOT NULL,\n  value)",
    );
    assert.equal(byName.cert, createTableSql("cert"));
    assert.equal(
      byName.crl,
      "CREATE TABLE crl (\n  serial INTEGER PRIMARY KEY NOT NULL,\n  date INTEGER NOT NULL)",
    );
    assert.deepEqual(treeRows(db), [{ prefix: "", email: null, cert: null }]);
  });
});

Deno.test("refuses a database whose table has another schema", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/r.db`;
    const db = openDb(path);
    db.sql.exec("DROP TABLE crl; CREATE TABLE crl (serial INTEGER, date INTEGER)");
    db.close();
    assert.throws(() => openDb(path), /table crl has an unexpected schema/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("allocates 0/16, 1/16, 2/16, 3/16 on a fresh tree and leaves one free sibling per level (VECTORS §13.1)", () => {
  withDb((db) => {
    const first = take(db, 16);
    assert.equal(cnFromPrefix(first), "0/16");
    const free = treeRows(db).filter((r) => r.cert === null).map((r) => r.prefix);
    const expected = ["0000000000000001"];
    for (let l = 15; l >= 1; l--) expected.push("0".repeat(l - 1) + "1");
    assert.deepEqual(free.sort(), expected.sort());
    assert.deepEqual([take(db, 16), take(db, 16), take(db, 16)].map(cnFromPrefix), [
      "1/16",
      "2/16",
      "3/16",
    ]);
  });
});

Deno.test("merges freed siblings into their parent but not past a split sibling (VECTORS §13.1)", () => {
  withDb((db) => {
    for (let i = 0; i < 4; i++) take(db, 16);
    db.tx(() => {
      freePrefix(db, "0000000000000010");
      freePrefix(db, "0000000000000011");
      mergeFreeBlocks(db);
    });
    const free = treeRows(db).filter((r) => r.cert === null).map((r) => r.prefix);
    assert.ok(free.includes("000000000000001"));
    assert.ok(free.includes("00000000000001"));
    assert.ok(!free.includes("0000000000000010"));
    assert.equal(cnFromPrefix(take(db, 16)), "2/16");
  });
});

Deno.test("never hands out the all-zero prefix of maximal length (VECTORS §13.2)", () => {
  withDb((db) => {
    const got = [take(db, 8, "", 8), take(db, 8, "", 8), take(db, 8, "", 8)];
    assert.deepEqual(got.map(cnFromPrefix), ["1/8", "2/8", "3/8"]);
    assert.equal(treeRows(db).find((r) => r.prefix === "00000000")?.cert, RESERVED);
  });
});

Deno.test("fails with AllocationError when the tree is full", () => {
  withDb((db) => {
    take(db, 1, "", 2);
    take(db, 1, "", 2);
    assert.throws(() => take(db, 1, "", 2), AllocationError);
    assert.throws(() => take(db, 0, "", 2), AllocationError);
    assert.throws(() => take(db, 3, "", 2), AllocationError);
  });
});

Deno.test("allocates inside communities as observed on the reference (VECTORS §13.3)", () => {
  withDb((db) => {
    const communities = parseCommunities("# example\n000 *\n001 @AS AU\n010 FR DE IT\n");
    checkCommunitiesAgainstTree(db, communities);
    const cases: [string, string, string][] = [
      ["FR", "@EU", "16384/16"],
      ["AU", "@OC", "8192/16"],
      ["JP", "@AS", "8193/16"],
      ["US", "@NA", "0/16"],
      ["DE", "@EU", "16385/16"],
    ];
    for (const [country, continent, cn] of cases) {
      const c = selectCommunity(communities, country, continent);
      assert.equal(cnFromPrefix(take(db, 13, c)), cn, `${country} ${continent}`);
    }
  });
});

Deno.test("rejects community files without exactly one default or with overlaps", () => {
  assert.throws(() => parseCommunities("0 FR\n1 DE\n"), CommunityError);
  assert.throws(() => parseCommunities("0 *\n1 *\n"), CommunityError);
  assert.throws(() => parseCommunities("0 *\n01 FR\n"), /overlaps/);
  assert.throws(() => parseCommunities("0x *\n"), /invalid community prefix/);
  assert.deepEqual(parseCommunities("\n  # c\n1 *\n"), [{ prefix: "1", locations: ["*"] }]);
});

Deno.test("refuses a community inside an allocated prefix", () => {
  withDb((db) => {
    take(db, 2);
    assert.throws(
      () => checkCommunitiesAgainstTree(db, parseCommunities("0000 *\n")),
      /contains community/,
    );
  });
});

Deno.test("1000 allocations never overlap and the tree merges back to one block", () => {
  withDb((db) => {
    const got: string[] = [];
    for (let i = 0; i < 1000; i++) got.push(take(db, 10 + (i % 7), "", 32));
    const sorted = [...got].sort();
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(!sorted[i].startsWith(sorted[i - 1]), `${sorted[i - 1]} contains ${sorted[i]}`);
    }
    db.tx(() => {
      for (const p of got) freePrefix(db, p);
      mergeFreeBlocks(db);
    });
    assert.deepEqual(treeRows(db), [{ prefix: "", email: null, cert: null }]);
  });
});

Deno.test("tokens are 8 distinct lower-case letters, single-use and expire", () => {
  for (let i = 0; i < 50; i++) {
    const t = randomToken();
    assert.match(t, /^[a-z]{8}$/);
    assert.equal(new Set(t).size, 8);
  }
  withDb((db) => {
    const t = db.tx(() => insertToken(db, null, "a@example.com", 16, 1000));
    assert.deepEqual(findToken(db, t), {
      token: t,
      email: "a@example.com",
      prefix_len: 16,
      date: 1000,
    });
    assert.throws(
      () => db.tx(() => insertToken(db, t, "b@example.com", 16, 1000)),
      TokenExistsError,
    );
    db.tx(() => insertToken(db, "mine", "b@example.com", 16, 2000));
    assert.equal(db.tx(() => expireTokens(db, 1000)), 1);
    assert.equal(findToken(db, t), undefined);
    assert.equal(db.tx(() => deleteToken(db, "mine")), true);
    assert.equal(db.tx(() => deleteToken(db, "mine")), false);
  });
});

Deno.test("the subject serial is the smallest free number, freed numbers are reused (§5.6)", () => {
  const s = new SubjectSerials();
  assert.equal(s.take(), 0);
  s.use(1);
  s.use(3);
  assert.equal(s.take(), 2);
  assert.equal(s.take(), 4);
  s.release(1);
  assert.equal(s.take(), 1);
  assert.equal(s.take(), 5);
  s.use(SubjectSerials.LIMIT + 5); // never handed out, never in the way
  s.use(5000);
  s.release(0);
  assert.equal(s.take(), 0);
  assert.equal(s.take(), 6);
  assert.ok(s.has(5000) && !s.has(4999));
});

Deno.test("a failed transaction changes nothing", () => {
  withDb((db) => {
    assert.throws(() =>
      db.tx(() => {
        allocatePrefix(db, 16, "", 80);
        throw new Error("boom");
      }), /boom/);
    assert.deepEqual(treeRows(db), [{ prefix: "", email: null, cert: null }]);
  });
});
