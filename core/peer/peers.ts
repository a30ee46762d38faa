// The table of known peers (PROTOCOL.md §6.1), certificate checks of handshakes (§6.6) and
// expiry of entries whose certificate ended (§6.4, §7.8).

import { prefixFromCn } from "../addressing.ts";
import type { Bits } from "../addressing.ts";
import { parseCertificate, validateCert } from "../cert.ts";
import { describeError } from "../errors.ts";
import type { Certificate } from "../cert.ts";
import { newSession } from "./session.ts";
import type { PeerCert, Session } from "./session.ts";

/** Validates a DER certificate strictly against the CA (§3.6); throws when invalid. */
export type CertChecker = (der: Uint8Array) => PeerCert | Promise<PeerCert>;

/**
 * The production CertChecker: parses the DER, validates it strictly against `ca` at `now()`
 * (seconds) and reads the prefix from its CN (§3.6, §6.6).
 */
export function caCertChecker(ca: Certificate, now: () => number): CertChecker {
  return (der) => {
    const cert = parseCertificate(der, "peer certificate");
    const why = validateCert(cert, ca, { strict: true, now: new Date(now()) });
    if (why) throw new Error(why);
    if (cert.cn === undefined) throw new Error("certificate has no CN");
    return {
      der: cert.der,
      prefix: prefixFromCn(cert.cn),
      serial: cert.serial,
      notAfter: cert.notAfter.getTime(),
      fingerprint: cert.sha1,
      publicKey: cert.publicKey,
    };
  };
}

/** Peers kept sorted by prefix string, looked up by source-address bits (§6.1). */
export class PeerTable {
  #sorted: Bits[] = [];
  #byPrefix = new Map<Bits, Session>();
  /** Earliest notAfter among the entries (Infinity when none has a certificate). */
  #nextExpiry = Infinity;

  constructor(readonly initialSecret: Uint8Array) {}

  /** Number of entries. */
  get size(): number {
    return this.#byPrefix.size;
  }

  /** The entry for exactly `prefix`, if any. */
  get(prefix: Bits): Session | undefined {
    return this.#byPrefix.get(prefix);
  }

  /** The entry for `prefix`, created with the start-up secret when missing. */
  getOrCreate(prefix: Bits): Session {
    let s = this.#byPrefix.get(prefix);
    if (!s) {
      s = newSession(prefix, this.initialSecret);
      this.#byPrefix.set(prefix, s);
      this.#sorted.splice(this.#insertionPoint(prefix), 0, prefix);
    }
    return s;
  }

  /** Removes the entry for `prefix`; returns whether there was one. */
  delete(prefix: Bits): boolean {
    if (!this.#byPrefix.delete(prefix)) return false;
    const i = this.#insertionPoint(prefix);
    this.#sorted.splice(i, 1);
    return true;
  }

  /** All entries in prefix order. */
  entries(): Session[] {
    return this.#sorted.map((p) => this.#byPrefix.get(p)!);
  }

  /**
   * Candidate peer for source bits (node prefix + host bits, network stripped): the entry with
   * the greatest prefix ≤ `bits` in string order (§6.1). It may not be the real sender.
   */
  candidate(bits: Bits): Session | undefined {
    // Index of the first prefix > bits; the candidate is just before it.
    let lo = 0, hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#sorted[mid] <= bits) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : this.#byPrefix.get(this.#sorted[lo - 1]);
  }

  /** Stores a validated certificate in an entry and schedules the entry's expiry (§6.6). */
  setCert(s: Session, cert: PeerCert): void {
    s.cert = cert;
    this.#nextExpiry = Math.min(this.#nextExpiry, cert.notAfter);
  }

  /** Drops entries whose certificate has expired at `now` (ms); returns their prefixes. */
  expire(now: number): Bits[] {
    if (now < this.#nextExpiry) return [];
    return this.dropWhere((s) => s.cert !== null && s.cert.notAfter <= now);
  }

  /** Drops the entries matching `pred`; returns their prefixes. */
  dropWhere(pred: (s: Session) => boolean): Bits[] {
    const gone = this.entries().filter(pred).map((s) => s.prefix);
    for (const p of gone) this.delete(p);
    let next = Infinity;
    for (const s of this.#byPrefix.values()) next = Math.min(next, s.cert?.notAfter ?? Infinity);
    this.#nextExpiry = next;
    return gone;
  }

  #insertionPoint(prefix: Bits): number {
    let lo = 0, hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#sorted[mid] < prefix) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Outcome of the certificate checks of a seq-0/1 message (§6.6). */
export type CertCheckResult =
  | { ok: true; cert: PeerCert }
  | { ok: false; reason: string; invalid: boolean };

/**
 * Checks the certificate of a handshake coming from source `bits`: strict validity, CRL, and
 * CN prefix matching the source address (§6.6). `invalid` tells a validation failure apart.
 */
export async function checkPeerCert(
  der: Uint8Array,
  bits: Bits,
  check: CertChecker,
  isRevoked: (serial: bigint) => boolean,
): Promise<CertCheckResult> {
  let cert: PeerCert;
  try {
    cert = await check(der);
  } catch (e) {
    return { ok: false, invalid: true, reason: `invalid certificate: ${describeError(e)}` };
  }
  if (isRevoked(cert.serial)) {
    return { ok: false, invalid: false, reason: `certificate serial ${cert.serial} is revoked` };
  }
  if (!bits.startsWith(cert.prefix)) {
    return {
      ok: false,
      invalid: false,
      reason: `certificate prefix ${cert.prefix} does not match the source address`,
    };
  }
  return { ok: true, cert };
}
