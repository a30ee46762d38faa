// The node's cache database `<state>/cache.db` (PROTOCOL.md §7.2): network parameters and
// peer address lists. The SQLite handle is given by the caller (node:sqlite DatabaseSync).

import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import type { Bits } from "../addressing.ts";
import { PEER_CACHE_MAX } from "../constants.ts";
import type { NetValue, NetworkParams } from "../netconfig/document.ts";

/** Exact `CREATE TABLE` texts of the cache (the same rule as the registry's, §5.1). */
export const CACHE_SCHEMA: Readonly<Record<string, string>> = {
  peer: "CREATE TABLE peer (\n  prefix TEXT PRIMARY KEY NOT NULL,\n  address TEXT NOT NULL)",
  config: "CREATE TABLE config (\n  name TEXT PRIMARY KEY NOT NULL,\n  value)",
};

/** Network parameters whose value is a boolean (SQLite stores them as integers). */
const BOOLEAN_KEYS = new Set(["encrypt"]);
/** Parameters stored as BLOBs: the version and the Babel keys. */
const isBlobKey = (k: string) => k === "version" || k.startsWith("babel_hmac");

/** The cache file exists but its tables are not the expected ones (§7.2: move it aside). */
export class CacheSchemaError extends Error {
  override name = "CacheSchemaError";
}

/** A peer row. */
export interface CachedPeer {
  prefix: Bits;
  address: string;
}

/** Typed access to the cache database. */
export interface NodeCache {
  /** The stored network parameters, decoded like a fresh document (§4.7). */
  config(): NetworkParams;
  /** The stored signed version blob, or null. */
  version(): Uint8Array | null;
  /** Replaces every stored parameter by `params`; returns the keys that changed (sorted). */
  storeConfig(params: NetworkParams): string[];
  /** Our own address list from the last run (row `''`), or null. */
  ownAddress(): string | null;
  /** Saves our own address list (row `''`). */
  setOwnAddress(address: string): void;
  /** Adds or merges a peer's address list (§7.2 merge rule); resets its `try` to 0. */
  addPeer(prefix: Bits, address: string, preferred?: string): void;
  /** Whether the peer has a row, usable or not. */
  hasPeer(prefix: Bits): boolean;
  /** Address list of a peer, usable or not, or null when not cached. */
  knownAddress(prefix: Bits): string | null;
  /** Address list of a peer if it is usable (try = 0), else null. */
  peerAddress(prefix: Bits): string | null;
  /** Peers with the given try value (default 0), random order, without `exclude`. */
  peers(opts?: { tried?: 0 | 1; exclude?: Bits }): CachedPeer[];
  /** Marks a peer as being tried / failed (1) or usable (0). */
  setTry(prefix: Bits, value: 0 | 1): void;
  /** Forgets a peer. */
  removePeer(prefix: Bits): void;
  /** Number of peers (own row excluded). */
  peerCount(): number;
  /** Peers whose address may be tried now (try = 0). */
  usablePeerCount(): number;
  /** Keeps at most `n` peers (at exit, §7.1 step 13: usable ones first). */
  shrink(n: number): void;
  close(): void;
}

function existingSchema(db: DatabaseSync): Map<string, string> {
  const rows = db.prepare("SELECT name, sql FROM sqlite_master WHERE type='table'").all();
  return new Map(rows.map((r) => [String(r.name), String(r.sql)]));
}

/** Opens the cache on `db`: creates missing tables, checks existing ones (CacheSchemaError). */
export function openCache(db: DatabaseSync, opts: { random?: () => number } = {}): NodeCache {
  const random = opts.random ?? Math.random;
  const found = existingSchema(db);
  for (const [name, sql] of Object.entries(CACHE_SCHEMA)) {
    const have = found.get(name);
    if (have === undefined) db.exec(sql);
    else if (have !== sql) {
      throw new CacheSchemaError(`table ${name} has an unexpected schema: ${JSON.stringify(have)}`);
    }
  }
  db.exec("PRAGMA synchronous = OFF");
  db.exec("PRAGMA journal_mode = MEMORY");
  db.exec("ATTACH DATABASE ':memory:' AS volatile");
  db.exec(
    "CREATE TABLE volatile.stat (peer TEXT PRIMARY KEY NOT NULL, try INTEGER NOT NULL DEFAULT 0)",
  );
  db.exec("CREATE INDEX volatile.stat_try ON stat(try)");
  db.exec("INSERT INTO volatile.stat (peer) SELECT prefix FROM peer WHERE prefix != ''");

  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  const tx = <T>(fn: () => T): T => {
    db.exec("BEGIN");
    try {
      const r = fn();
      db.exec("COMMIT");
      return r;
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
  };

  const getAddress = (prefix: Bits): string | null => {
    const r = db.prepare("SELECT address FROM peer WHERE prefix = ?").get(prefix);
    return r ? String(r.address) : null;
  };
  const trimTo = (max: number) => {
    // Keep usable peers first, random among equals.
    const rows = db.prepare(
      "SELECT prefix, try FROM peer JOIN volatile.stat ON prefix = peer WHERE prefix != ''",
    ).all().map((r) => ({ prefix: String(r.prefix), tried: Number(r.try) }));
    if (rows.length <= max) return;
    const order = shuffle(rows).sort((a, b) => a.tried - b.tried);
    const del = db.prepare("DELETE FROM peer WHERE prefix = ?");
    const delStat = db.prepare("DELETE FROM volatile.stat WHERE peer = ?");
    for (const r of order.slice(max)) {
      del.run(r.prefix);
      delStat.run(r.prefix);
    }
  };

  return {
    config() {
      const out: NetworkParams = {};
      for (const r of db.prepare("SELECT name, value FROM config").all()) {
        const name = String(r.name);
        const v = r.value as SQLInputValue;
        if (name.endsWith(":json")) out[name.slice(0, -5)] = JSON.parse(String(v));
        else out[name] = fromSql(name, v);
      }
      return out;
    },
    version() {
      const r = db.prepare("SELECT value FROM config WHERE name = 'version'").get();
      return r?.value instanceof Uint8Array ? Uint8Array.from(r.value) : null;
    },
    storeConfig(params) {
      const before = new Map<string, string>();
      for (const r of db.prepare("SELECT name, value FROM config").all()) {
        before.set(keyOf(String(r.name)), fingerprint(r.value as SQLInputValue));
      }
      const after = new Map<string, [string, SQLInputValue]>();
      for (const [k, v] of Object.entries(params)) after.set(k, toSql(k, v));
      const changed = new Set<string>();
      for (const [k, [, v]] of after) if (before.get(k) !== fingerprint(v)) changed.add(k);
      for (const k of before.keys()) if (!after.has(k)) changed.add(k);
      tx(() => {
        db.exec("DELETE FROM config");
        const ins = db.prepare("INSERT INTO config (name, value) VALUES (?, ?)");
        for (const [name, v] of after.values()) ins.run(name, v);
      });
      return [...changed].sort();
    },
    ownAddress: () => getAddress(""),
    setOwnAddress(address) {
      db.prepare("INSERT OR REPLACE INTO peer (prefix, address) VALUES ('', ?)").run(address);
    },
    addPeer(prefix, address, preferred) {
      tx(() => {
        const old = getAddress(prefix);
        let merged: string[];
        const incoming = address.split(";").filter((e) => e);
        if (old === null) {
          trimTo(PEER_CACHE_MAX - 1);
          merged = incoming;
        } else {
          const known = old.split(";").filter((e) => e);
          merged = [
            ...known.filter((e) => incoming.includes(e)),
            ...incoming.filter((e) => !known.includes(e)),
          ];
        }
        if (preferred !== undefined && merged.includes(preferred)) {
          merged = [preferred, ...merged.filter((e) => e !== preferred)];
        }
        db.prepare("INSERT OR REPLACE INTO peer (prefix, address) VALUES (?, ?)").run(
          prefix,
          merged.join(";"),
        );
        db.prepare("INSERT OR REPLACE INTO volatile.stat (peer, try) VALUES (?, 0)").run(prefix);
      });
    },
    hasPeer: (prefix) => prefix !== "" && getAddress(prefix) !== null,
    knownAddress: (prefix) => prefix === "" ? null : getAddress(prefix),
    peerAddress(prefix) {
      const r = db.prepare(
        "SELECT address FROM peer JOIN volatile.stat ON prefix = peer WHERE prefix = ? AND try = 0",
      ).get(prefix);
      return r ? String(r.address) : null;
    },
    peers(o = {}) {
      const rows = db.prepare(
        "SELECT prefix, address FROM peer JOIN volatile.stat ON prefix = peer " +
          "WHERE try = ? AND prefix != ?",
      ).all(o.tried ?? 0, o.exclude ?? "");
      return shuffle(rows.map((r) => ({ prefix: String(r.prefix), address: String(r.address) })));
    },
    setTry(prefix, value) {
      db.prepare("UPDATE volatile.stat SET try = ? WHERE peer = ?").run(value, prefix);
    },
    removePeer(prefix) {
      db.prepare("DELETE FROM peer WHERE prefix = ?").run(prefix);
      db.prepare("DELETE FROM volatile.stat WHERE peer = ?").run(prefix);
    },
    peerCount() {
      const r = db.prepare("SELECT count(*) AS n FROM peer WHERE prefix != ''").get();
      return Number(r?.n ?? 0);
    },
    usablePeerCount() {
      const r = db.prepare("SELECT count(*) AS n FROM volatile.stat WHERE try = 0").get();
      return Number(r?.n ?? 0);
    },
    shrink(n) {
      tx(() => trimTo(Math.max(0, n)));
    },
    close() {
      db.close();
    },
  };
}

function keyOf(name: string): string {
  return name.endsWith(":json") ? name.slice(0, -5) : name;
}

/** Stored name and SQLite value of one parameter (§7.2). */
function toSql(key: string, v: NetValue): [string, SQLInputValue] {
  if (v instanceof Uint8Array) return [key, v];
  if (isBlobKey(key) && v === "") return [key, new Uint8Array(0)];
  if (v !== null && typeof v === "object") return [`${key}:json`, JSON.stringify(v)];
  if (typeof v === "boolean") return [key, v ? 1 : 0];
  return [key, v];
}

function fromSql(name: string, v: SQLInputValue): NetValue {
  if (v instanceof Uint8Array) {
    const bytes = Uint8Array.from(v);
    return name.startsWith("babel_hmac") && bytes.length === 0 ? "" : bytes;
  }
  if (BOOLEAN_KEYS.has(name) && (typeof v === "number" || typeof v === "bigint")) {
    return Number(v) !== 0;
  }
  if (typeof v === "bigint") return Number(v);
  if (v === null || typeof v === "number" || typeof v === "string") return v;
  return null;
}

function fingerprint(v: SQLInputValue): string {
  if (v instanceof Uint8Array) return "b:" + Array.from(v).join(",");
  if (typeof v === "bigint") return "n:" + v.toString();
  if (typeof v === "number") return "n:" + String(v);
  return typeof v + ":" + String(v);
}

/** Opens (and creates) `<state>/cache.db`; a file with a foreign schema goes to `.bak`. */
export function openCacheFile(
  path: string,
  open: (path: string) => DatabaseSync,
  rename: (from: string, to: string) => void,
  opts: { random?: () => number; onReset?: (why: string) => void } = {},
): NodeCache {
  const db = open(path);
  try {
    return openCache(db, opts);
  } catch (e) {
    db.close();
    if (!(e instanceof CacheSchemaError)) throw e;
    opts.onReset?.(e.message);
    rename(path, path + ".bak");
    return openCache(open(path), opts);
  }
}
