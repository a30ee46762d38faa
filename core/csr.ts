// Certificate signing requests (PKCS#10) as produced by re6st conf (PROTOCOL.md §3.4), and the
// strict reading the registry applies before copying a subject into a certificate (§3.5).

import { describeError } from "./errors.ts";
import crypto, { type KeyObject } from "node:crypto";
import { loadPublicKey, type PrivateKeyInput, publicKeyOf, rsaSign, spkiDer } from "./crypto.ts";
import {
  bitString,
  children,
  expectTag,
  fromPem,
  nullValue,
  oid,
  readBitString,
  readDer,
  readInteger,
  readOid,
  sequence,
  TAG,
  tlv,
  toPem,
} from "./der.ts";
import {
  encodeName,
  type NameAttr,
  OID,
  parseName,
  SIGNATURE_HASH,
  type SubjectEntry,
} from "./x509_name.ts";

/** The parts of a certificate signing request, its signature not yet checked. */
export interface CsrParts {
  der: Uint8Array;
  /** Subject attributes in DER order. */
  subject: NameAttr[];
  /** DER of the SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** DER of the CertificationRequestInfo: what the signature covers. */
  info: Uint8Array;
  /** Hash of the signature algorithm ("sha512", …), or null when it is not a known RSA one. */
  hash: string | null;
  signature: Uint8Array;
}

/** A parsed certificate signing request. */
export interface Csr extends CsrParts {
  publicKey: KeyObject;
  /** Whether the request is signed by the key it carries (the reference does not check). */
  signatureValid: boolean;
}

const CSR_LABELS = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

/** A PEM CSR for `key` with the given subject, signed sha512WithRSAEncryption (§3.4). */
export function createCsr(key: PrivateKeyInput, subject: readonly SubjectEntry[]): string {
  const info = sequence(
    Uint8Array.of(TAG.INTEGER, 1, 0),
    encodeName(subject),
    spkiDer(publicKeyOf(key)),
    tlv(0xa0),
  );
  const der = sequence(
    info,
    sequence(oid(OID.sha512WithRSAEncryption), nullValue()),
    bitString(rsaSign(key, info)),
  );
  return toPem("CERTIFICATE REQUEST", der);
}

/**
 * Reads a PEM (or DER) CSR strictly: one PEM block, version 0 (v1), version, subject, key and
 * attributes and nothing else, every subject attribute of a known type with a valid string
 * (x509_name.ts parseName strict). Does not check the signature.
 */
export function readCsr(input: string | Uint8Array): CsrParts {
  try {
    let der: Uint8Array;
    if (typeof input === "string") {
      const blocks = input.match(/-----BEGIN /g)?.length ?? 0;
      if (blocks > 1) throw new Error(`${blocks} PEM blocks, expected one`);
      der = fromPem(input, CSR_LABELS);
    } else {
      der = Uint8Array.from(input);
    }
    const top = children(expectTag(readDer(der), TAG.SEQUENCE, "CSR"));
    if (top.length !== 3) throw new Error(`CSR has ${top.length} elements, expected 3`);
    const [info, alg, sig] = top;
    const fields = children(expectTag(info, TAG.SEQUENCE, "CSR info"));
    const [versionNode, subjectNode, spkiNode, attributes] = fields;
    if (fields.length < 3 || fields.length > 4 || (attributes && attributes.tag !== 0xa0)) {
      throw new Error("CSR info is not version, subject, key and attributes");
    }
    const version = readInteger(versionNode);
    if (version !== 0n) throw new Error(`CSR version ${version}, expected 0 (v1)`);
    return {
      der,
      subject: parseName(subjectNode, { strict: true }),
      spki: expectTag(spkiNode, TAG.SEQUENCE, "SubjectPublicKeyInfo").der,
      info: info.der,
      hash: SIGNATURE_HASH[readOid(children(expectTag(alg, TAG.SEQUENCE, "algorithm"))[0])] ??
        null,
      signature: readBitString(sig),
    };
  } catch (cause) {
    throw new Error(`Cannot parse certificate request: ${describeError(cause)}`, { cause });
  }
}

/** Reads a PEM (or DER) CSR strictly (readCsr) and checks its self-signature. */
export function parseCsr(input: string | Uint8Array): Csr {
  const parts = readCsr(input);
  let publicKey: KeyObject;
  try {
    publicKey = loadPublicKey(parts.spki, "CSR public key");
  } catch (cause) {
    throw new Error(`Cannot parse certificate request: ${describeError(cause)}`, { cause });
  }
  let signatureValid = false;
  if (parts.hash) {
    try {
      signatureValid = crypto.verify(parts.hash, parts.info, {
        key: publicKey,
        padding: crypto.constants.RSA_PKCS1_PADDING,
      }, parts.signature);
    } catch {
      signatureValid = false;
    }
  }
  return { ...parts, publicKey, signatureValid };
}
