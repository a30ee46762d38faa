// X.509 certificates (PROTOCOL.md §3.3–§3.9): parsing, validation against the CA, fingerprints.
// Issuing, CSRs and test CAs live in cert_issue.ts and csr.ts and are re-exported here.

import { describeError } from "./errors.ts";
import crypto, { type KeyObject } from "node:crypto";
import { type Bits, networkFromSerial } from "./addressing.ts";
import { bytesEqual, fromHex, loadPublicKey } from "./crypto.ts";
import {
  children,
  expectTag,
  fromPem,
  readBitString,
  readDer,
  readInteger,
  readOid,
  readTime,
  TAG,
  toPem,
} from "./der.ts";
import {
  formatName,
  type NameAttr,
  nameValue,
  OID_CN,
  OID_SERIAL_NUMBER,
  parseName,
  SIGNATURE_HASH,
} from "./x509_name.ts";

export * from "./cert_issue.ts";
export * from "./csr.ts";
export { formatName, type NameAttr, type SubjectEntry } from "./x509_name.ts";

/** A parsed X.509 certificate. */
export interface Certificate {
  /** DER encoding (what fingerprints are computed over). */
  der: Uint8Array;
  /** PEM text of `der`. */
  pem: string;
  /** X.509 version: 1 or 3 (re6st node certificates are v1). */
  version: number;
  /** Certificate serial number. */
  serial: bigint;
  issuer: NameAttr[];
  /** DER of the issuer Name (compared with the CA subject). */
  issuerDer: Uint8Array;
  /** Subject attributes in DER order. */
  subject: NameAttr[];
  /** DER of the subject Name. */
  subjectDer: Uint8Array;
  /** Subject commonName (a CN form "V/L" for node certificates). */
  cn?: string;
  /** Subject serialNumber attribute as a number (the re6st subject serial, §5.6). */
  subjectSerial?: number;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  /** DER of the SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** DER of the TBSCertificate (the signed part). */
  tbs: Uint8Array;
  /** Dotted OID of the signature algorithm. */
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** SHA-1 of the DER: the peer handshake fingerprint (§3.9). */
  sha1: Uint8Array;
}

/** Parses a certificate from PEM text or DER bytes; `source` names it in errors. */
export function parseCertificate(input: string | Uint8Array, source = "certificate"): Certificate {
  try {
    const der = typeof input === "string"
      ? fromPem(input, ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"])
      : input;
    return parseDer(der);
  } catch (cause) {
    const why = describeError(cause);
    throw new Error(`Cannot parse ${source}: ${why}`, { cause });
  }
}

function parseDer(input: Uint8Array): Certificate {
  const der = Uint8Array.from(input);
  const [tbsNode, algNode, sigNode] = children(
    expectTag(readDer(der), TAG.SEQUENCE, "Certificate"),
  );
  if (!sigNode) throw new Error("Certificate has fewer than 3 elements");
  const fields = children(expectTag(tbsNode, TAG.SEQUENCE, "TBSCertificate"));
  let version = 1;
  if (fields[0]?.tag === 0xa0) {
    version = Number(readInteger(children(fields.shift()!)[0])) + 1;
  }
  const [serialNode, , issuerNode, validityNode, subjectNode, spkiNode] = fields;
  if (!spkiNode) throw new Error("TBSCertificate has too few elements");
  const [nb, na] = children(expectTag(validityNode, TAG.SEQUENCE, "Validity"));
  const subject = parseName(subjectNode);
  const spki = expectTag(spkiNode, TAG.SEQUENCE, "SubjectPublicKeyInfo").der;
  const serialText = nameValue(subject, OID_SERIAL_NUMBER);
  return {
    der,
    pem: toPem("CERTIFICATE", der),
    version,
    serial: readInteger(serialNode),
    issuer: parseName(issuerNode),
    issuerDer: issuerNode.der,
    subject,
    subjectDer: subjectNode.der,
    cn: nameValue(subject, OID_CN),
    subjectSerial: serialText !== undefined && /^\d{1,15}$/.test(serialText)
      ? Number(serialText)
      : undefined,
    notBefore: readTime(nb),
    notAfter: readTime(na),
    publicKey: loadPublicKey(spki, "certificate public key"),
    spki,
    tbs: tbsNode.der,
    signatureAlgorithm: readOid(children(expectTag(algNode, TAG.SEQUENCE, "AlgorithmId"))[0]),
    signature: readBitString(sigNode),
    sha1: fingerprint(der, "sha1"),
  };
}

/** Whether `cert` carries a valid signature by `ca`'s key (RSA PKCS#1 v1.5, any SHA). */
export function isSignedBy(cert: Certificate, ca: Certificate): boolean {
  const hash = SIGNATURE_HASH[cert.signatureAlgorithm];
  if (!hash) return false;
  try {
    return crypto.verify(hash, cert.tbs, {
      key: ca.publicKey,
      padding: crypto.constants.RSA_PKCS1_PADDING,
    }, cert.signature);
  } catch {
    return false;
  }
}

/** Options of validateCert. */
export interface ValidateOptions {
  /** true: check validity at `now`; false: ignore expiry (§3.6). Default true. */
  strict?: boolean;
  /** Current time (default: the clock). */
  now?: Date;
}

/**
 * Checks that `cert` is issued and signed by `ca` and is within its validity period (§3.6);
 * returns null when valid, else the reason (e.g. "certificate has expired").
 */
export function validateCert(
  cert: Certificate,
  ca: Certificate,
  opts: ValidateOptions = {},
): string | null {
  const now = opts.now ?? new Date();
  if (!bytesEqual(cert.issuerDer, ca.subjectDer)) {
    return `issuer (${formatName(cert.issuer)}) is not the CA (${formatName(ca.subject)})`;
  }
  if (!isSignedBy(cert, ca)) return "signature does not verify with the CA key";
  // Non-strict: check at min(now, max(notBefore(CA), notBefore(cert))), so expiry is ignored.
  const at = opts.strict ?? true ? now : new Date(
    Math.min(now.getTime(), Math.max(ca.notBefore.getTime(), cert.notBefore.getTime())),
  );
  const t = at.getTime();
  if (t < cert.notBefore.getTime()) return "certificate is not yet valid";
  if (t > cert.notAfter.getTime()) return "certificate has expired";
  if (t < ca.notBefore.getTime()) return "CA certificate is not yet valid";
  if (t > ca.notAfter.getTime()) return "CA certificate has expired";
  return null;
}

/** Network bit-string encoded in the CA certificate serial (§1.1). */
export function networkOfCa(ca: Certificate): Bits {
  return networkFromSerial(ca.serial);
}

// --- Fingerprints (§3.9) ---

// hashlib names that differ from node:crypto names.
const HASH_ALIASES: Record<string, string> = {
  blake2b: "blake2b512",
  blake2s: "blake2s256",
  sha3_224: "sha3-224",
  sha3_256: "sha3-256",
  sha3_384: "sha3-384",
  sha3_512: "sha3-512",
  sha512_224: "sha512-224",
  sha512_256: "sha512-256",
};

function hashName(alg: string): string {
  const lower = alg.toLowerCase();
  const name = HASH_ALIASES[lower] ?? lower;
  if (!crypto.getHashes().includes(name)) throw new Error(`Unknown hash algorithm ${alg}`);
  return name;
}

/** Digest of certificate DER bytes with a hash named like Python hashlib ("sha1", "sha256"). */
export function fingerprint(der: Uint8Array, alg: string): Uint8Array {
  const d = crypto.createHash(hashName(alg)).update(der).digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

/** A parsed `--fingerprint ALG:HEX` value. */
export interface FingerprintSpec {
  alg: string;
  digest: Uint8Array;
}

/** Parses `ALG:HEX` (§3.9); throws on unknown algorithms, bad hex or a wrong digest length. */
export function parseFingerprint(spec: string): FingerprintSpec {
  const i = spec.indexOf(":");
  if (i < 0) throw new Error(`Invalid fingerprint ${JSON.stringify(spec)}: expected ALG:HEX`);
  const alg = spec.slice(0, i);
  const digest = fromHex(spec.slice(i + 1));
  const expected = crypto.createHash(hashName(alg)).digest().length;
  if (digest.length !== expected) {
    throw new Error(
      `Invalid fingerprint ${
        JSON.stringify(spec)
      }: ${alg} digests are ${expected} bytes, got ${digest.length}`,
    );
  }
  return { alg, digest };
}

/** Whether the DER bytes match a parsed fingerprint. */
export function matchesFingerprint(der: Uint8Array, spec: FingerprintSpec): boolean {
  return bytesEqual(fingerprint(der, spec.alg), spec.digest);
}

/** Every certificate of a PEM bundle, in order. */
export function splitPemCertificates(text: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)) {
    out.push(fromPem(m[0], ["CERTIFICATE"]));
  }
  return out;
}
