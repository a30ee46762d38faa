// Certificate issuance, renewal and revocation by the registry (PROTOCOL.md §3.5, §3.7, §3.8,
// §4.6, §5.3–§5.6). Each operation is one database transaction (issuance: one to allocate,
// one to store once signed); the index is written in the same transaction.

import { type Bits, cnFromPrefix, prefixFromCn } from "../addressing.ts";
import {
  assembleCertificate,
  type CsrParts,
  issuedSubject,
  parseCertificate,
  readCsr,
  tbsCertificate,
} from "../cert.ts";
import { CERT_LIFETIME_S, RENEW_PERIOD_S } from "../constants.ts";
import { modulusBits, rsaSign } from "../crypto.ts";
import { describeError } from "../errors.ts";
import { allocatePrefix, freePrefix, mergeFreeBlocks, PENDING } from "./allocation.ts";
import type { CertInfo } from "./cert_index.ts";
import { selectCommunity } from "./communities.ts";
import { HttpError } from "./errors.ts";
import type { Registry } from "./registry.ts";
import { deleteToken, findToken, insertToken, type TokenRow } from "./tokens.ts";

/** Largest CSR accepted, in characters of PEM text. */
export const MAX_CSR_CHARS = 16384;

/** Country of an IP address, for communities and getCountry (GeoIP, optional). */
export interface GeoIp {
  /** Country code and continent code (e.g. ["FR", "EU"]) of `ip`, or null if unknown. */
  lookup(ip: string): { country: string; continent: string } | null;
}

/** Parameters of requestCertificate (§4.6). */
export interface CertificateRequest {
  token: string;
  req: string;
  location: string;
  ip: string;
}

/** Outcome of an issuance: the PEM, or null for an unknown token (204). */
export interface Issued {
  pem: string;
  prefix: Bits;
  /** True when this certificate made the network configuration change (first one). */
  bumped: boolean;
}

/** The CSR `req` if the registry accepts it (§3.4, §3.5, quirks Q9, Q16), else HttpError. */
function checkedCsr(r: Registry, req: string): CsrParts {
  if (req.length > MAX_CSR_CHARS) {
    throw new HttpError(413, `CSR of ${req.length} characters is too large`);
  }
  let csr;
  try {
    csr = readCsr(req);
  } catch (e) {
    throw new HttpError(400, `malformed CSR: ${describeError(e)}`);
  }
  let bits = 0;
  try {
    bits = r.rsa.keyBits(csr.spki);
  } catch {
    // not an RSA key: said below
  }
  const caBits = modulusBits(r.ca.publicKey);
  if (bits !== caBits) {
    throw new HttpError(
      400,
      `CSR key is ${bits ? bits + "-bit RSA" : "not RSA"}, the CA key is ${caBits}-bit RSA`,
    );
  }
  if (!csr.hash || !r.rsa.verify(csr.spki, csr.hash, csr.info, csr.signature)) {
    throw new HttpError(400, "CSR signature does not match its key");
  }
  return csr;
}

/** Issues a certificate for a CSR (requestCertificate, §4.6); null for an unknown token. */
export async function requestCertificate(
  r: Registry,
  q: CertificateRequest,
  geoip: GeoIp | null,
): Promise<Issued | null> {
  const csr = checkedCsr(r, q.req);
  const anonymous = q.token === "";
  const length = anonymous ? r.config.anonymousPrefixLength : r.config.prefixLength;
  if (!length) {
    throw new HttpError(
      403,
      anonymous ? "anonymous registration is disabled" : "registration by e-mail is disabled",
    );
  }
  const [country, continent] = locate(q, geoip);
  const community = selectCommunity(r.communities, country, continent);
  const serials = r.certs.subjectSerials;
  // Phase 1 (locked, one transaction): take the token, allocate, number; the row is marked
  // PENDING so no one else gets it. The first certificate is done entirely here.
  const plan = await r.exclusive(() =>
    r.db.tx(() => {
      const now = new Date(r.clock.now());
      now.setMilliseconds(0);
      let len = length, email: string | null = null;
      let token: TokenRow | undefined;
      if (!anonymous) {
        token = findToken(r.db, q.token);
        if (!token) return null;
        deleteToken(r.db, q.token);
        email = token.email;
        len = token.prefix_len;
      }
      const prefix = allocatePrefix(r.db, len, community, r.maxPrefixLength);
      const subjectSerial = serials.take();
      r.db.onRollback(() => serials.release(subjectSerial));
      const tbs = tbsCertificate({
        ca: r.ca,
        subject: issuedSubject(csr.subject, subjectSerial, cnFromPrefix(prefix)),
        publicKey: csr.spki,
        serial: r.certs.nextSerial(),
        notBefore: now,
        notAfter: new Date(now.getTime() + CERT_LIFETIME_S * 1000),
      });
      const first = r.registryPrefix === null;
      let pem = PENDING;
      if (first) {
        pem = assembleCertificate(tbs, rsaSign(r.caKey, tbs)).pem;
        r.certs.store(prefix, email, pem);
        r.db.setConfig("prefix", prefix);
        r.bumpVersion();
      } else {
        r.db.prepare("UPDATE cert SET email = ?, cert = ? WHERE prefix = ?")
          .run(email, PENDING, prefix);
      }
      return { prefix, email, token, tbs, subjectSerial, pem, first };
    })
  );
  if (plan === null) return null;
  let pem = plan.pem;
  if (!plan.first) {
    // Phase 2: sign without the write lock (the built-in engine signs off the JS thread).
    try {
      pem = assembleCertificate(plan.tbs, await r.sign(plan.tbs)).pem;
      await r.exclusive(() => r.db.tx(() => r.certs.store(plan.prefix, plan.email, pem)));
    } catch (e) {
      await r.exclusive(() =>
        r.db.tx(() => {
          freePrefix(r.db, plan.prefix);
          mergeFreeBlocks(r.db);
          if (plan.token) {
            const t = plan.token;
            insertToken(r.db, t.token, t.email, t.prefix_len, t.date);
          }
          r.db.afterCommit(() => serials.release(plan.subjectSerial));
        })
      );
      throw e;
    }
  }
  r.log.info(
    `Issued certificate ${cnFromPrefix(plan.prefix)} (${plan.email ?? "anonymous"}, ` +
      `community "${community}")${plan.first ? ": it is the registry node" : ""}`,
  );
  return { pem, prefix: plan.prefix, bumped: plan.first };
}

function locate(q: CertificateRequest, geoip: GeoIp | null): [string, string] {
  if (!geoip) return ["*", "*"];
  let country = "*", continent = "*";
  if (q.location) {
    [country = "*", continent = "*"] = q.location.split(",");
  } else if (q.ip) {
    const found = geoip.lookup(q.ip);
    if (found) [country, continent] = [found.country, found.continent];
  }
  return [country || "*", continent && continent !== "*" ? "@" + continent : "*"];
}

/** The certificate of `prefix` renewed if due or revoked, else unchanged (§3.8). */
export function renewCertificate(r: Registry, prefix: Bits): Promise<string> {
  return r.exclusive(async () => {
    const info = r.certs.get(prefix);
    if (!info) throw new HttpError(404, `no certificate for ${prefix}`);
    const nowMs = r.clock.now();
    const due = info.notAfterS - RENEW_PERIOD_S < nowMs / 1000;
    const revoked = !due && r.isRevoked(info.serial);
    if (!due && !revoked) return info.pem;
    const now = new Date(nowMs);
    now.setMilliseconds(0);
    const old = parseCertificate(info.pem, `certificate of ${prefix}`);
    const tbs = r.db.tx(() =>
      tbsCertificate({
        ca: r.ca,
        subject: old.subject,
        publicKey: old.spki,
        serial: r.certs.nextSerial(),
        notBefore: now,
        notAfter: due ? new Date(now.getTime() + CERT_LIFETIME_S * 1000) : old.notAfter,
      })
    );
    // A serial number lost to a crash here is harmless: the old certificate stays.
    const pem = assembleCertificate(tbs, await r.sign(tbs)).pem;
    r.db.tx(() => r.certs.store(prefix, info.email, pem));
    r.log.info(`Renewed certificate ${cnFromPrefix(prefix)} (${due ? "expiring" : "revoked"})`);
    return pem;
  });
}

/** Revokes by certificate serial (decimal) or CN form (§4.6); true when the CRL grew. */
export function revoke(r: Registry, cnOrSerial: string): Promise<boolean> {
  return r.exclusive(() => revokeLocked(r, cnOrSerial));
}

function revokeLocked(r: Registry, cnOrSerial: string): boolean {
  let info: CertInfo | undefined;
  let byCn = false;
  if (/^\d+$/.test(cnOrSerial)) {
    const prefix = r.certs.bySerial(BigInt(cnOrSerial));
    info = prefix === undefined ? undefined : r.certs.get(prefix);
    if (!info) throw new HttpError(404, `no stored certificate with serial ${cnOrSerial}`);
  } else {
    let prefix: Bits;
    try {
      prefix = prefixFromCn(cnOrSerial);
    } catch (e) {
      throw new HttpError(400, describeError(e));
    }
    info = r.certs.get(prefix);
    if (!info) throw new HttpError(404, `no certificate for ${cnOrSerial}`);
    if (prefix === r.registryPrefix) {
      throw new HttpError(403, `refusing to free the prefix of the registry node ${cnOrSerial}`);
    }
    byCn = true;
  }
  const target = info;
  let live = target.notAfterS > r.nowS();
  r.db.tx(() => {
    if (byCn) {
      r.certs.remove(target.prefix);
      mergeFreeBlocks(r.db);
    }
    if (live) {
      live = Number(
        r.db.prepare("INSERT OR IGNORE INTO crl VALUES (?, ?)").run(
          target.serial,
          Math.floor(target.notAfterS),
        ).changes,
      ) > 0;
      if (live) r.bumpVersion();
    }
  });
  if (byCn) r.sessions.drop(target.prefix);
  r.log.info(
    `Revoked certificate serial ${target.serial} of ${cnFromPrefix(target.prefix)}` +
      (byCn ? ", prefix freed" : "") + (live ? "" : " (expired or already revoked: CRL unchanged)"),
  );
  return live;
}
