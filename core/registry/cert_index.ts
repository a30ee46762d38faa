// The registry's stored certificates (PROTOCOL.md §3.7, §5.6, §5.7) without holding them in
// memory: the `cert` table keeps the PEM, the `cert_index` table beside it keeps per prefix
// the serial, subject serial and notAfter (indexed), so clean-up, revocation by serial and the
// next clean-up date cost O(log n); a bitmap gives the smallest free subject serial; a small
// LRU keeps the certificates of recent callers. The index is written in the same transaction
// as the `cert` row it describes, and stamped with the last certificate serial; at start-up it
// is rebuilt (every certificate parsed) only when it does not match the `cert` table (a new or
// migrated database, or one another registry wrote to).

import type { Bits } from "../addressing.ts";
import { children, expectTag, fromPem, readDer, readInteger, readTime, TAG } from "../der.ts";
import { nameValue, OID_SERIAL_NUMBER, parseName } from "../x509_name.ts";
import { freePrefix, PENDING, RESERVED } from "./allocation.ts";
import type { RegistryDb } from "./db.ts";

/** The fields of a stored certificate the registry works with. */
export interface CertFields {
  serial: bigint;
  /** notAfter in UNIX seconds. */
  notAfterS: number;
  /** The subject serialNumber as a number (§5.6), or null when absent or not a number. */
  subjectSerial: number | null;
  /** DER of the SubjectPublicKeyInfo. */
  spki: Uint8Array;
}

/** What the registry knows about one stored certificate. */
export interface CertInfo extends CertFields {
  prefix: Bits;
  email: string | null;
  pem: string;
}

/** Serial, notAfter, subject serial and key of a PEM certificate, read without a full parse. */
export function certFields(pem: string): CertFields {
  const der = fromPem(pem, ["CERTIFICATE"]);
  const [tbs] = children(expectTag(readDer(der), TAG.SEQUENCE, "Certificate"));
  const fields = children(expectTag(tbs, TAG.SEQUENCE, "TBSCertificate"));
  if (fields[0]?.tag === 0xa0) fields.shift();
  const [serial, , , validity, subject, spki] = fields;
  if (!spki) throw new Error("TBSCertificate has too few elements");
  const text = nameValue(parseName(subject), OID_SERIAL_NUMBER);
  return {
    serial: readInteger(serial),
    notAfterS: readTime(children(expectTag(validity, TAG.SEQUENCE, "Validity"))[1]).getTime() /
      1000,
    subjectSerial: text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : null,
    spki: expectTag(spki, TAG.SEQUENCE, "SubjectPublicKeyInfo").der.slice(),
  };
}

/** Subject serials in use (§5.6) as a bitmap; numbers from 2^24 on are never handed out. */
export class SubjectSerials {
  static readonly LIMIT = 1 << 24;
  #bits = new Uint8Array(128);
  /** Every number below is in use. */
  #low = 0;

  /** Marks `n` as used. */
  use(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= SubjectSerials.LIMIT) return;
    if (n >> 3 >= this.#bits.length) {
      const bigger = new Uint8Array(Math.max(this.#bits.length * 2, (n >> 3) + 1));
      bigger.set(this.#bits);
      this.#bits = bigger;
    }
    this.#bits[n >> 3] |= 1 << (n & 7);
  }

  /** Marks `n` as free again. */
  release(n: number): void {
    if (!this.has(n)) return;
    this.#bits[n >> 3] &= ~(1 << (n & 7));
    if (n < this.#low) this.#low = n;
  }

  /** Whether `n` is in use. */
  has(n: number): boolean {
    return Number.isInteger(n) && n >= 0 && (n >> 3) < this.#bits.length &&
      (this.#bits[n >> 3] & (1 << (n & 7))) !== 0;
  }

  /** The smallest free number, now marked used. */
  take(): number {
    let n = this.#low;
    while (this.has(n)) n++;
    if (n >= SubjectSerials.LIMIT) throw new Error("No free subject serial left");
    this.use(n);
    this.#low = n + 1;
    return n;
  }
}

/** A stored certificate that cannot be read (it is left in the table, unused). */
export interface UnreadableCert {
  prefix: Bits;
  error: unknown;
}

/** `config` row: the certificate serial the index is up to date with. */
const INDEX_STAMP = "cert_index_serial";

/** The certificates of the `cert` table, indexed. */
export class CertStore {
  readonly subjectSerials = new SubjectSerials();
  readonly #db: RegistryDb;
  readonly #cacheSize: number;
  readonly #cache = new Map<Bits, CertInfo>();
  #count = 0;

  constructor(db: RegistryDb, cacheSize = 1024) {
    this.#db = db;
    this.#cacheSize = cacheSize;
    // not_after is NULL for a certificate that cannot be read: it never expires here.
    db.tx(() => {
      db.sql.exec(`CREATE TABLE IF NOT EXISTS cert_index (
        prefix TEXT PRIMARY KEY NOT NULL, serial INTEGER NOT NULL, subject_serial INTEGER,
        not_after INTEGER)`);
      db.sql.exec("CREATE INDEX IF NOT EXISTS cert_index_serial ON cert_index (serial)");
      db.sql.exec("CREATE INDEX IF NOT EXISTS cert_index_expiry ON cert_index (not_after)");
    });
  }

  /**
   * Loads the index at start-up, rebuilding it when it does not match the `cert` table; returns
   * the certificates that cannot be read and whether it was rebuilt.
   */
  load(): { unreadable: UnreadableCert[]; rebuilt: boolean } {
    const db = this.#db;
    const stored = db.prepare(
      "SELECT count(*) AS n FROM cert WHERE cert IS NOT NULL AND cert NOT IN (?, ?)",
    ).get(RESERVED, PENDING) as { n: number };
    const indexed = db.prepare("SELECT count(*) AS n FROM cert_index").get() as { n: number };
    const rebuilt = stored.n !== indexed.n ||
      (db.getConfig(INDEX_STAMP) ?? null) !== (db.getConfig("serial") ?? null);
    if (rebuilt) this.#rebuild();
    this.#cache.clear();
    // One text of every subject serial: a row object per certificate would cost far more memory.
    const { serials } = db.prepare(
      "SELECT group_concat(subject_serial) AS serials FROM cert_index",
    ).get() as { serials: string | null };
    let n = 0;
    for (let i = 0; i < (serials?.length ?? 0); i++) {
      const c = serials!.charCodeAt(i) - 48;
      if (c >= 0 && c <= 9) n = n * 10 + c;
      else {
        this.subjectSerials.use(n);
        n = 0;
      }
    }
    if (serials) this.subjectSerials.use(n);
    this.#count = (db.prepare("SELECT count(not_after) AS n FROM cert_index").get() as {
      n: number;
    }).n;
    const unreadable: UnreadableCert[] = [];
    for (
      const { prefix } of db.prepare("SELECT prefix FROM cert_index WHERE not_after IS NULL")
        .all() as { prefix: string }[]
    ) {
      const row = db.prepare("SELECT cert FROM cert WHERE prefix = ?").get(prefix) as {
        cert: string;
      };
      try {
        certFields(row.cert);
      } catch (error) {
        unreadable.push({ prefix, error });
      }
    }
    return { unreadable, rebuilt };
  }

  /** Parses every stored certificate into the index. */
  #rebuild(): void {
    const db = this.#db;
    const rows = db.sql.prepare(
      "SELECT prefix, cert FROM cert WHERE cert IS NOT NULL AND cert NOT IN (?, ?)",
    );
    db.tx(() => {
      db.sql.exec("DELETE FROM cert_index");
      for (const row of rows.iterate(RESERVED, PENDING)) {
        const { prefix, cert } = row as { prefix: string; cert: string };
        let f: CertFields | null = null;
        try {
          f = certFields(cert);
        } catch {
          // said by load()
        }
        this.#index(prefix, f);
      }
      db.setConfig(INDEX_STAMP, db.getConfig("serial") ?? null);
    });
  }

  /** The next certificate serial (§3.5), stored (call inside tx). */
  nextSerial(): number {
    const serial = Number(this.#db.getConfig("serial") ?? 0) + 1;
    this.#db.setConfig("serial", serial);
    this.#db.setConfig(INDEX_STAMP, serial);
    return serial;
  }

  /** Number of readable stored certificates. */
  get size(): number {
    return this.#count;
  }

  /** The certificate of `prefix`, if one is stored and readable. */
  get(prefix: Bits): CertInfo | undefined {
    const hit = this.#cache.get(prefix);
    if (hit) {
      this.#cache.delete(prefix);
      this.#cache.set(prefix, hit);
      return hit;
    }
    const row = this.#db.prepare("SELECT email, cert FROM cert WHERE prefix = ?").get(prefix) as
      | { email: string | null; cert: string | null }
      | undefined;
    if (!row?.cert || row.cert === RESERVED || row.cert === PENDING) return undefined;
    let info: CertInfo;
    try {
      const f = certFields(row.cert);
      info = { ...f, prefix, email: row.email, pem: row.cert };
    } catch {
      return undefined; // reported by load()
    }
    this.#cache.set(prefix, info);
    if (this.#cache.size > this.#cacheSize) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    return info;
  }

  /** Stores `pem` as the certificate of `prefix` (call inside tx); returns its fields. */
  store(prefix: Bits, email: string | null, pem: string): CertFields {
    const f = certFields(pem);
    const known = this.#db.prepare("SELECT 1 FROM cert_index WHERE prefix = ?").get(prefix);
    this.#db.prepare("UPDATE cert SET email = ?, cert = ? WHERE prefix = ?").run(
      email,
      pem,
      prefix,
    );
    this.#index(prefix, f);
    this.#cache.delete(prefix);
    if (f.subjectSerial !== null) this.subjectSerials.use(f.subjectSerial);
    if (!known) this.#db.afterCommit(() => this.#count++);
    return f;
  }

  /** Frees the block of `prefix` and forgets its certificate (call inside tx). */
  remove(prefix: Bits): void {
    const row = this.#db.prepare("SELECT subject_serial FROM cert_index WHERE prefix = ?")
      .get(prefix) as { subject_serial: number | null } | undefined;
    freePrefix(this.#db, prefix);
    this.#db.prepare("DELETE FROM cert_index WHERE prefix = ?").run(prefix);
    this.#cache.delete(prefix);
    if (row) {
      this.#db.afterCommit(() => {
        this.#count--;
        if (row.subject_serial !== null) this.subjectSerials.release(row.subject_serial);
      });
    }
  }

  /** Prefix of the stored certificate with serial `serial`, if any. */
  bySerial(serial: bigint): Bits | undefined {
    if (serial < 0n || serial >= 1n << 63n) return undefined;
    const row = this.#db.prepare("SELECT prefix FROM cert_index WHERE serial = ?").get(serial) as
      | { prefix: string }
      | undefined;
    return row?.prefix;
  }

  /** Prefixes of the certificates whose notAfter is at or before `limitS`. */
  expiredBy(limitS: number): Bits[] {
    return (this.#db.prepare("SELECT prefix FROM cert_index WHERE not_after <= ?")
      .all(Math.floor(limitS)) as { prefix: string }[]).map((r) => r.prefix);
  }

  /** The earliest notAfter (UNIX s) of a stored certificate, or null when there is none. */
  firstExpiryS(): number | null {
    const row = this.#db.prepare("SELECT min(not_after) AS t FROM cert_index").get() as {
      t: number | null;
    };
    return row.t;
  }

  /** Writes the index row of `prefix`; `f` null for a certificate that cannot be read. */
  #index(prefix: Bits, f: CertFields | null): void {
    // A serial beyond SQLite's integers (not one this registry issued) cannot be revoked by
    // serial; everything else about the certificate still works.
    const serial = f && f.serial >= 0n && f.serial < 1n << 63n ? f.serial : -1n;
    this.#db.prepare("INSERT OR REPLACE INTO cert_index VALUES (?, ?, ?, ?)")
      .run(prefix, serial, f?.subjectSerial ?? null, f ? Math.floor(f.notAfterS) : null);
  }
}
