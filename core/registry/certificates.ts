// Certificate issuance, renewal and revocation by the registry (PROTOCOL.md §3.5, §3.7, §3.8,
// §4.6, §5.3–§5.6). Each operation is one database transaction; the in-memory index is
// updated only after it committed.

import { type Bits, cnFromPrefix, prefixFromCn } from "../addressing.ts";
import { assembleCertificate, issuedSubject, parseCsr, tbsCertificate } from "../cert.ts";
import { CERT_LIFETIME_S, RENEW_PERIOD_S } from "../constants.ts";
import { modulusBits, rsaSign } from "../crypto.ts";
import { allocatePrefix, freePrefix, mergeFreeBlocks, PENDING } from "./allocation.ts";
import { selectCommunity } from "./communities.ts";
import { HttpError } from "./errors.ts";
import type { CertInfo, Registry } from "./registry.ts";
import { deleteToken, findToken, insertToken, smallestFree, type TokenRow } from "./tokens.ts";

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

/** Issues a certificate for a CSR (requestCertificate, §4.6); null for an unknown token. */
export async function requestCertificate(
  r: Registry,
  q: CertificateRequest,
  geoip: GeoIp | null,
): Promise<Issued | null> {
  if (q.req.length > MAX_CSR_CHARS) {
    throw new HttpError(413, `CSR of ${q.req.length} characters is too large`);
  }
  let csr;
  try {
    csr = parseCsr(q.req);
  } catch (e) {
    throw new HttpError(400, `malformed CSR: ${(e as Error).message}`);
  }
  if (!csr.signatureValid) throw new HttpError(400, "CSR signature does not match its key");
  const bits = csr.publicKey.asymmetricKeyType === "rsa" ? modulusBits(csr.publicKey) : 0;
  if (bits !== modulusBits(r.ca.publicKey)) {
    throw new HttpError(
      400,
      `CSR key is ${bits ? bits + "-bit RSA" : "not RSA"}, the CA key is ` +
        `${modulusBits(r.ca.publicKey)}-bit RSA`,
    );
  }
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
      const subjectSerial = smallestFree([...r.usedSubjectSerials(), ...r.pendingSubjectSerials]);
      const tbs = tbsCertificate({
        ca: r.ca,
        subject: issuedSubject(csr.subject, subjectSerial, cnFromPrefix(prefix)),
        publicKey: csr.spki,
        serial: nextSerial(r),
        notBefore: now,
        notAfter: new Date(now.getTime() + CERT_LIFETIME_S * 1000),
      });
      const first = r.registryPrefix === null;
      const pem = first ? assembleCertificate(tbs, rsaSign(r.caKey, tbs)).pem : PENDING;
      r.db.sql.prepare("UPDATE cert SET email = ?, cert = ? WHERE prefix = ?")
        .run(email, pem, prefix);
      if (first) {
        r.db.setConfig("prefix", prefix);
        r.bumpVersion();
      } else {
        r.pendingSubjectSerials.add(subjectSerial);
      }
      return { prefix, email, token, tbs, subjectSerial, pem, first };
    })
  );
  if (plan === null) return null;
  let pem = plan.pem;
  if (!plan.first) {
    // Phase 2: sign off the JS thread, other issuances go on meanwhile.
    try {
      pem = assembleCertificate(plan.tbs, await r.sign(plan.tbs)).pem;
      await r.exclusive(() =>
        r.db.tx(() =>
          r.db.sql.prepare("UPDATE cert SET cert = ? WHERE prefix = ?").run(pem, plan.prefix)
        )
      );
    } catch (e) {
      await r.exclusive(() =>
        r.db.tx(() => {
          freePrefix(r.db, plan.prefix);
          mergeFreeBlocks(r.db);
          if (plan.token) {
            insertToken(
              r.db,
              plan.token.token,
              plan.token.email,
              plan.token.prefix_len,
              plan.token.date,
            );
          }
        })
      );
      throw e;
    } finally {
      r.pendingSubjectSerials.delete(plan.subjectSerial);
    }
  }
  r.indexCert(plan.prefix, plan.email, pem);
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

function nextSerial(r: Registry): number {
  const serial = Number(r.db.getConfig("serial") ?? 0) + 1;
  r.db.setConfig("serial", serial);
  return serial;
}

/** The certificate of `prefix` renewed if due or revoked, else unchanged (§3.8). */
export function renewCertificate(r: Registry, prefix: Bits): Promise<string> {
  return r.exclusive(async () => {
    const info = r.certs.get(prefix);
    if (!info) throw new HttpError(404, `no certificate for ${prefix}`);
    const nowMs = r.clock.now();
    const due = info.notAfterS - RENEW_PERIOD_S < nowMs / 1000;
    const revoked = !due && r.isRevoked(info.cert.serial);
    if (!due && !revoked) return info.cert.pem;
    const now = new Date(nowMs);
    now.setMilliseconds(0);
    const tbs = r.db.tx(() =>
      tbsCertificate({
        ca: r.ca,
        subject: info.cert.subject,
        publicKey: info.cert.spki,
        serial: nextSerial(r),
        notBefore: now,
        notAfter: due ? new Date(now.getTime() + CERT_LIFETIME_S * 1000) : info.cert.notAfter,
      })
    );
    // A serial number lost to a crash here is harmless: the old certificate stays.
    const pem = assembleCertificate(tbs, await r.sign(tbs)).pem;
    r.db.tx(() => r.db.sql.prepare("UPDATE cert SET cert = ? WHERE prefix = ?").run(pem, prefix));
    r.indexCert(prefix, info.email, pem);
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
    const serial = BigInt(cnOrSerial);
    info = [...r.certs.values()].find((c) => c.cert.serial === serial);
    if (!info) throw new HttpError(404, `no stored certificate with serial ${cnOrSerial}`);
  } else {
    let prefix: Bits;
    try {
      prefix = prefixFromCn(cnOrSerial);
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
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
      freePrefix(r.db, target.prefix);
      mergeFreeBlocks(r.db);
    }
    if (live) {
      live = Number(
        r.db.sql.prepare("INSERT OR IGNORE INTO crl VALUES (?, ?)").run(
          target.cert.serial,
          Math.floor(target.notAfterS),
        ).changes,
      ) > 0;
      if (live) r.bumpVersion();
    }
  });
  if (byCn) {
    r.certs.delete(target.prefix);
    r.sessions.drop(target.prefix);
  }
  r.log.info(
    `Revoked certificate serial ${target.cert.serial} of ${cnFromPrefix(target.prefix)}` +
      (byCn ? ", prefix freed" : "") + (live ? "" : " (expired or already revoked: CRL unchanged)"),
  );
  return live;
}
