// Prefix allocation tree stored in the `cert` table (PROTOCOL.md §5.1, §5.3, §5.7).
// Every function here writes; call it inside RegistryDb.tx. Free blocks are found through the
// partial index of free rows (db.ts), the block holding a prefix by primary-key lookups, so
// no step reads the whole table.

import type { Bits } from "../addressing.ts";
import type { RegistryDb } from "./db.ts";

/** `cert` value of a block that can never be allocated (§5.3). */
export const RESERVED = "reserved";

/**
 * `cert` value of a block allocated to a certificate being signed (this implementation only;
 * such rows are freed at start-up: they were never handed out).
 */
export const PENDING = "pending";

/** No free block can hold the requested prefix (answered as HTTP 500, §5.3). */
export class AllocationError extends Error {
  override name = "AllocationError";
}

/** One row of the `cert` table. */
export interface CertRow {
  prefix: Bits;
  email: string | null;
  cert: string | null;
}

const isFree = (r: CertRow | undefined) => r !== undefined && r.cert === null && r.email === null;

/**
 * Allocates a free prefix of `length + community.length` bits inside `community` (§5.3) and
 * returns it, still free: the caller stores email and certificate in the same transaction.
 * `maxLength` is 128 − network length.
 */
export function allocatePrefix(
  db: RegistryDb,
  length: number,
  community: Bits,
  maxLength: number,
): Bits {
  const total = length + community.length;
  if (!(length >= 0 && total > 0 && total <= maxLength)) {
    throw new AllocationError(
      `Cannot allocate a /${length} prefix in community "${community}": ` +
        `total length ${total} not in 1..${maxLength}`,
    );
  }
  const longest = db.prepare(
    `SELECT prefix FROM cert WHERE cert IS NULL AND email IS NULL
       AND substr(prefix, 1, ?) = ? AND length(prefix) BETWEEN ? AND ?
     ORDER BY length(prefix) DESC, prefix LIMIT 1`,
  );
  const rename = db.prepare("UPDATE cert SET prefix = ? WHERE prefix = ?");
  const insertFree = db.prepare("INSERT INTO cert VALUES (?, NULL, NULL)");
  const reserve = db.prepare("UPDATE cert SET cert = ? WHERE prefix = ?");
  for (;;) {
    const row = longest.get(community.length, community, community.length, total) as
      | { prefix: string }
      | undefined;
    let p: Bits;
    if (row !== undefined) {
      p = row.prefix;
    } else {
      const holder = containingRow(db, community);
      if (!isFree(holder)) {
        throw new AllocationError(
          `No more free /${total} prefix in community "${community}"`,
        );
      }
      p = holder!.prefix;
    }
    for (let i = p.length; i < total; i++) {
      const b = i < community.length ? community[i] : "0";
      rename.run(p + (b === "0" ? "1" : "0"), p); // the sibling stays free
      p += b;
      insertFree.run(p);
    }
    if (p.length < maxLength || p.slice(community.length).includes("1")) return p;
    reserve.run(RESERVED, p); // all-zero tail at maximal length: never given out
  }
}

/** The row whose prefix is a prefix of `bits` (the block holding it), if any. */
export function containingRow(db: RegistryDb, bits: Bits): CertRow | undefined {
  const get = db.prepare("SELECT prefix, email, cert FROM cert WHERE prefix = ?");
  for (let n = bits.length; n >= 0; n--) {
    const row = get.get(bits.slice(0, n)) as CertRow | undefined;
    if (row !== undefined) return { ...row };
  }
  return undefined;
}

/** Marks an allocated block free again (email and certificate set to NULL). */
export function freePrefix(db: RegistryDb, prefix: Bits): void {
  db.prepare("UPDATE cert SET email = NULL, cert = NULL WHERE prefix = ?").run(prefix);
}

/** Merges free sibling blocks into their parent, longest first, until none remain (§5.7). */
export function mergeFreeBlocks(db: RegistryDb): number {
  const rows = db.prepare(
    "SELECT prefix FROM cert WHERE cert IS NULL AND email IS NULL",
  ).all() as { prefix: string }[];
  const byLength = new Map<number, Set<string>>();
  const add = (p: string) => {
    let s = byLength.get(p.length);
    if (!s) byLength.set(p.length, s = new Set());
    s.add(p);
  };
  rows.forEach((r) => add(r.prefix));
  const del = db.prepare("DELETE FROM cert WHERE prefix = ?");
  const ins = db.prepare("INSERT INTO cert VALUES (?, NULL, NULL)");
  let merged = 0;
  let previous = Infinity;
  for (;;) {
    const lengths = [...byLength.keys()].filter((l) => l < previous && l > 0);
    if (!lengths.length) break;
    const len = Math.max(...lengths);
    previous = len;
    const sorted = [...byLength.get(len)!].sort();
    for (let i = 0; i + 1 < sorted.length; i++) {
      const a = sorted[i], b = sorted[i + 1];
      if (a.endsWith("0") && b === a.slice(0, -1) + "1") {
        const parent = a.slice(0, -1);
        del.run(a);
        del.run(b);
        ins.run(parent);
        add(parent);
        merged++;
        i++;
      }
    }
  }
  return merged;
}

/** All rows of the allocation tree, sorted by prefix (for tests and diagnostics). */
export function treeRows(db: RegistryDb): CertRow[] {
  return (db.sql.prepare("SELECT prefix, email, cert FROM cert ORDER BY prefix")
    .all() as unknown as CertRow[]).map((r) => ({ ...r }));
}
