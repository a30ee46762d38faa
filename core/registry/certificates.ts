// Certificate issuance, renewal and revocation by the registry (PROTOCOL.md §3.5, §3.7, §3.8,
// §4.6, §5.3–§5.6). Each operation is one database transaction; the in-memory index is
// updated only after it committed.

import { type Bits, cnFromPrefix, prefixFromCn } from "../addressing.ts";
import { issueCertificate, issuedSubject, parseCsr } from "../cert.ts";
import { CERT_LIFETIME_S, RENEW_PERIOD_S } from "../constants.ts";
import { modulusBits } from "../crypto.ts";
import { allocatePrefix, freePrefix, mergeFreeBlocks } from "./allocation.ts";
import { selectCommunity } from "./communities.ts";
import { HttpError } from "./errors.ts";
import type { CertInfo, Registry } from "./registry.ts";
import { deleteToken, findToken, smallestFree } from "./tokens.ts";

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
export function requestCertificate(
  r: Registry,
  q: CertificateRequest,
  geoip: GeoIp | null,
): Issued | null {
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
  const now = new Date(r.clock.now());
  now.setMilliseconds(0);
  let issued: Issued | null = null;
  let email: string | null = null;
  r.db.tx(() => {
    let len = length;
    if (!anonymous) {
      const row = findToken(r.db, q.token);
      if (!row) return;
      deleteToken(r.db, q.token);
      email = row.email;
      len = row.prefix_len;
    }
    const prefix = allocatePrefix(r.db, len, community, r.maxPrefixLength);
    const subjectSerial = smallestFree(r.usedSubjectSerials());
    const serial = nextSerial(r);
    const cert = issueCertificate({
      ca: r.ca,
      caKey: r.caKey,
      subject: issuedSubject(csr.subject, subjectSerial, cnFromPrefix(prefix)),
      publicKey: csr.spki,
      serial,
      notBefore: now,
      notAfter: new Date(now.getTime() + CERT_LIFETIME_S * 1000),
    });
    r.db.sql.prepare("UPDATE cert SET email = ?, cert = ? WHERE prefix = ?").run(
      email,
      cert.pem,
      prefix,
    );
    const first = r.registryPrefix === null;
    if (first) {
      r.db.setConfig("prefix", prefix);
      r.bumpVersion();
    }
    issued = { pem: cert.pem, prefix, bumped: first };
  });
  if (issued === null) return null;
  const done = issued as Issued;
  r.indexCert(done.prefix, email, done.pem);
  r.log.info(
    `Issued certificate ${cnFromPrefix(done.prefix)} (${email ?? "anonymous"}, ` +
      `community "${community}")${done.bumped ? ": it is the registry node" : ""}`,
  );
  return done;
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
export function renewCertificate(r: Registry, info: CertInfo): string {
  const nowMs = r.clock.now();
  const due = info.notAfterS - RENEW_PERIOD_S < nowMs / 1000;
  const revoked = !due && r.isRevoked(info.cert.serial);
  if (!due && !revoked) return info.cert.pem;
  const now = new Date(nowMs);
  now.setMilliseconds(0);
  let pem = "";
  r.db.tx(() => {
    const cert = issueCertificate({
      ca: r.ca,
      caKey: r.caKey,
      subject: info.cert.subject,
      publicKey: info.cert.spki,
      serial: nextSerial(r),
      notBefore: now,
      notAfter: due ? new Date(now.getTime() + CERT_LIFETIME_S * 1000) : info.cert.notAfter,
    });
    r.db.sql.prepare("UPDATE cert SET cert = ? WHERE prefix = ?").run(cert.pem, info.prefix);
    pem = cert.pem;
  });
  r.indexCert(info.prefix, info.email, pem);
  r.log.info(
    `Renewed certificate ${cnFromPrefix(info.prefix)} (${due ? "expiring" : "revoked"})`,
  );
  return pem;
}

/** Revokes by certificate serial (decimal) or CN form (§4.6); true when the CRL grew. */
export function revoke(r: Registry, cnOrSerial: string): boolean {
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
