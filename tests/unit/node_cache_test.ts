import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { CACHE_SCHEMA, CacheSchemaError, openCache, openCacheFile } from "../../core/node/cache.ts";
import type { NetworkParams } from "../../core/netconfig/document.ts";

function memCache() {
  const db = new DatabaseSync(":memory:");
  return { db, cache: openCache(db, { random: () => 0.5 }) };
}

Deno.test("creates the peer and config tables with the exact reference schema", () => {
  const { db, cache } = memCache();
  const rows = db.prepare("SELECT name, sql FROM sqlite_master WHERE type='table'").all();
  const main = Object.fromEntries(rows.map((r) => [String(r.name), String(r.sql)]));
  assert.equal(main.peer, CACHE_SCHEMA.peer);
  assert.equal(main.config, CACHE_SCHEMA.config);
  assert.equal(
    main.peer,
    "CREATE TABLE peer (\n  prefix TEXT PRIMARY KEY NOT NULL,\n  address TEXT NOT NULL)",
  );
  cache.close();
});

Deno.test("a cache file with another schema is moved to cache.db.bak and recreated", () => {
  const dir = Deno.makeTempDirSync({ prefix: "re6st-cache-" });
  try {
    const path = `${dir}/cache.db`;
    const old = new DatabaseSync(path);
    old.exec("CREATE TABLE peer (prefix TEXT, address TEXT)");
    old.close();
    const first = new DatabaseSync(path);
    assert.throws(() => openCache(first), CacheSchemaError);
    first.close();
    const resets: string[] = [];
    const cache = openCacheFile(path, (p) => new DatabaseSync(p), Deno.renameSync, {
      onReset: (why) => resets.push(why),
    });
    assert.equal(resets.length, 1);
    assert.ok(Deno.statSync(`${path}.bak`).isFile);
    cache.addPeer("01", "10.0.0.1,1194,tcp");
    assert.equal(cache.peerCount(), 1);
    cache.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("network parameters survive storage: JSON lists, booleans, blobs and empty keys", () => {
  const { db, cache } = memCache();
  const version = Uint8Array.of(1, 2, 3);
  const key = new Uint8Array(16).fill(7);
  const params: NetworkParams = {
    crl: [3, 5],
    same_country: ["FR"],
    encrypt: false,
    hello: 15,
    babel_default: "max-rtt-penalty 5000",
    version,
    babel_hmac_sign: key,
    babel_hmac_accept: "",
    valid_until: 1234.5,
    future_key: { a: 1 },
  };
  assert.deepEqual(cache.storeConfig(params), Object.keys(params).sort());
  const names = db.prepare("SELECT name FROM config ORDER BY name").all().map((r) => r.name);
  assert.ok(names.includes("crl:json") && names.includes("same_country:json"));
  assert.ok(names.includes("future_key:json"));
  assert.deepEqual(cache.config(), params);
  assert.deepEqual(cache.version(), version);
  cache.close();
});

Deno.test("storing a configuration reports new, modified and removed keys", () => {
  const { cache } = memCache();
  cache.storeConfig({ hello: 15, crl: [], encrypt: false, tunnel_refresh: 300 });
  const changed = cache.storeConfig({ hello: 30, crl: [], encrypt: false, client_count: 4 });
  assert.deepEqual(changed, ["client_count", "hello", "tunnel_refresh"]);
  assert.deepEqual(cache.storeConfig({ hello: 30, crl: [], encrypt: false, client_count: 4 }), []);
  cache.close();
});

Deno.test("a known peer's new address list keeps known entries first, in their old order", () => {
  const { cache } = memCache();
  cache.addPeer("0101", "1.1.1.1,1194,tcp;2.2.2.2,1194,tcp;3.3.3.3,1194,tcp");
  cache.addPeer("0101", "4.4.4.4,1194,tcp;3.3.3.3,1194,tcp;1.1.1.1,1194,tcp");
  assert.equal(cache.peerAddress("0101"), "1.1.1.1,1194,tcp;3.3.3.3,1194,tcp;4.4.4.4,1194,tcp");
  // A tunnel that worked with a non-first entry moves it to the front.
  cache.addPeer("0101", "1.1.1.1,1194,tcp;3.3.3.3,1194,tcp;4.4.4.4,1194,tcp", "4.4.4.4,1194,tcp");
  assert.equal(cache.peerAddress("0101"), "4.4.4.4,1194,tcp;1.1.1.1,1194,tcp;3.3.3.3,1194,tcp");
  cache.close();
});

Deno.test("a peer being tried is not offered until its address is refreshed", () => {
  const { cache } = memCache();
  cache.addPeer("0101", "1.1.1.1,1194,tcp");
  cache.addPeer("0110", "6.6.6.6,1194,tcp");
  cache.setTry("0101", 1);
  assert.equal(cache.peerAddress("0101"), null);
  assert.deepEqual(cache.peers().map((p) => p.prefix), ["0110"]);
  assert.deepEqual(cache.peers({ tried: 1 }).map((p) => p.prefix), ["0101"]);
  assert.deepEqual(cache.peers({ exclude: "0110" }).map((p) => p.prefix), []);
  cache.addPeer("0101", "1.1.1.1,1194,tcp");
  assert.equal(cache.peerAddress("0101"), "1.1.1.1,1194,tcp");
  cache.close();
});

Deno.test("the own address list is kept apart from peers", () => {
  const { cache } = memCache();
  cache.setOwnAddress("198.51.100.7,1194,tcp");
  assert.equal(cache.ownAddress(), "198.51.100.7,1194,tcp");
  assert.equal(cache.peerCount(), 0);
  assert.deepEqual(cache.peers(), []);
  cache.close();
});

Deno.test("inserting a new peer trims the table to 200, dropping tried peers first", () => {
  const { cache } = memCache();
  for (let i = 0; i < 200; i++) {
    cache.addPeer(i.toString(2).padStart(16, "0"), `10.0.0.${i % 250},1,tcp`);
  }
  cache.setTry("0000000000000011", 1);
  cache.addPeer("1111111111111111", "9.9.9.9,1,tcp");
  assert.equal(cache.peerCount(), 200);
  assert.equal(cache.peerAddress("1111111111111111"), "9.9.9.9,1,tcp");
  assert.equal(cache.peers({ tried: 1 }).length, 0, "the tried peer was dropped");
  cache.shrink(10);
  assert.equal(cache.peerCount(), 10);
  cache.close();
});

Deno.test("the try marks are rebuilt at each start: every cached peer is usable again", () => {
  const dir = Deno.makeTempDirSync({ prefix: "re6st-cache-" });
  try {
    const path = `${dir}/cache.db`;
    const a = openCache(new DatabaseSync(path));
    a.addPeer("0101", "1.1.1.1,1194,tcp");
    a.setTry("0101", 1);
    a.close();
    const b = openCache(new DatabaseSync(path));
    assert.equal(b.peerAddress("0101"), "1.1.1.1,1194,tcp");
    b.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("usable peers are those with try = 0", () => {
  const { cache } = memCache();
  cache.setOwnAddress("0,10.0.0.9,1194,udp");
  cache.addPeer("0001", "0,10.0.0.1,1194,udp");
  cache.addPeer("0010", "0,10.0.0.2,1194,udp");
  assert.equal(cache.usablePeerCount(), 2);
  cache.setTry("0010", 1);
  assert.deepEqual([cache.peerCount(), cache.usablePeerCount()], [2, 1]);
  cache.close();
});
