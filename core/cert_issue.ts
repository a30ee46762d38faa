// Issuing certificates (PROTOCOL.md §3.5) and creating CAs for tests and demos (§1.1, §3.3).

import type { KeyObject } from "node:crypto";
import { type Bits, serialFromNetwork } from "./addressing.ts";
import {
  generateRsaKey,
  loadPrivateKey,
  type PrivateKeyInput,
  publicKeyOf,
  rsaSign,
  sha1,
  spkiDer,
} from "./crypto.ts";
import {
  bitString,
  boolean,
  children,
  explicit,
  integer,
  nullValue,
  octetString,
  oid,
  readBitString,
  readDer,
  sequence,
  time,
  tlv,
  toPem,
} from "./der.ts";
import {
  encodeName,
  entryOid,
  OID,
  OID_CN,
  OID_SERIAL_NUMBER,
  type SubjectEntry,
} from "./x509_name.ts";

/** The parts of the CA certificate needed to issue: its subject Name DER. */
export interface Issuer {
  subjectDer: Uint8Array;
}

/** Parameters of issueCertificate. */
export interface IssueParams {
  ca: Issuer;
  caKey: PrivateKeyInput;
  /** Subject attributes in DER order (parsed attributes are copied verbatim). */
  subject: readonly SubjectEntry[];
  /** Subject public key: a KeyObject or SubjectPublicKeyInfo DER. */
  publicKey: KeyObject | Uint8Array;
  serial: bigint | number;
  notBefore: Date;
  notAfter: Date;
}

/** An issued certificate. */
export interface IssuedCertificate {
  der: Uint8Array;
  pem: string;
}

/** sha512WithRSAEncryption AlgorithmIdentifier. */
const SHA512_RSA = () => sequence(oid(OID.sha512WithRSAEncryption), nullValue());

function signed(tbs: Uint8Array, key: PrivateKeyInput): IssuedCertificate {
  return assembleCertificate(tbs, rsaSign(key, tbs));
}

function asSpki(k: KeyObject | Uint8Array): Uint8Array {
  return k instanceof Uint8Array ? k : spkiDer(k);
}

/**
 * Issues an X.509 v1 certificate without extensions, signed sha512WithRSAEncryption by the CA
 * key (§3.5).
 */
export function issueCertificate(p: IssueParams): IssuedCertificate {
  return signed(tbsCertificate(p), p.caKey);
}

/** The TBSCertificate of issueCertificate, for callers that sign elsewhere (async). */
export function tbsCertificate(p: Omit<IssueParams, "caKey">): Uint8Array {
  return sequence(
    integer(p.serial),
    SHA512_RSA(),
    p.ca.subjectDer,
    sequence(time(p.notBefore), time(p.notAfter)),
    encodeName(p.subject),
    asSpki(p.publicKey),
  );
}

/** The certificate made of a TBSCertificate and its sha512WithRSAEncryption signature. */
export function assembleCertificate(tbs: Uint8Array, signature: Uint8Array): IssuedCertificate {
  const der = sequence(tbs, SHA512_RSA(), bitString(signature));
  return { der, pem: toPem("CERTIFICATE", der) };
}

/**
 * Subject of a registry-issued certificate (§3.5): the CSR attributes in order, without any
 * serialNumber or CN, then serialNumber (subject serial) and CN (CN form of the prefix).
 */
export function issuedSubject(
  csrSubject: readonly SubjectEntry[],
  subjectSerial: number,
  cn: string,
): SubjectEntry[] {
  return [
    ...csrSubject.filter((e) => {
      const o = entryOid(e);
      return o !== OID_SERIAL_NUMBER && o !== OID_CN;
    }),
    ["serialNumber", String(subjectSerial)],
    ["CN", cn],
  ];
}

/** Parameters of createCa. */
export interface CreateCaParams {
  /** Network bit-string encoded in the serial (§1.1). */
  network: Bits;
  /** RSA modulus size (default 2048). Ignored when `keyPem` is given. */
  bits?: number;
  /** Validity in days (default 3650). */
  days?: number;
  /** Subject CN (default "re6st CA"). */
  commonName?: string;
  /** Subject emailAddress (used as From of token mails, §3.3). */
  email?: string;
  /** Reuse this key (re-issuing a CA for another network, §1.1). */
  keyPem?: string;
  /** Start of validity (default now). */
  notBefore?: Date;
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? sequence(oid(id), boolean(true), octetString(value))
    : sequence(oid(id), octetString(value));
}

/** Creates a self-signed v3 CA whose serial encodes `network` (§3.3) for tests and demos. */
export async function createCa(p: CreateCaParams): Promise<{ certPem: string; keyPem: string }> {
  const keyPem = p.keyPem ?? await generateRsaKey(p.bits ?? 2048);
  const key = loadPrivateKey(keyPem, "CA key");
  const spki = spkiDer(publicKeyOf(key));
  const keyId = sha1(readBitString(children(readDer(spki))[1]));
  const subject: SubjectEntry[] = [["CN", p.commonName ?? "re6st CA"]];
  if (p.email) subject.push(["emailAddress", p.email]);
  const name = encodeName(subject);
  const notBefore = p.notBefore ?? new Date();
  const notAfter = new Date(notBefore.getTime() + (p.days ?? 3650) * 86400_000);
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(serialFromNetwork(p.network)),
    SHA512_RSA(),
    name,
    sequence(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(
      3,
      sequence(
        extension(OID.subjectKeyIdentifier, false, octetString(keyId)),
        extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, keyId))),
        extension(OID.basicConstraints, true, sequence(boolean(true))),
      ),
    ),
  );
  return { certPem: signed(tbs, key).pem, keyPem };
}
