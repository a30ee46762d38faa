// Certificate signing requests (PKCS#10) as produced by re6st conf (PROTOCOL.md §3.4).

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

/** A parsed certificate signing request. */
export interface Csr {
  der: Uint8Array;
  /** Subject attributes in DER order. */
  subject: NameAttr[];
  publicKey: KeyObject;
  /** DER of the SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** Whether the request is signed by the key it carries (the reference does not check). */
  signatureValid: boolean;
}

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

/** Parses a PEM (or DER) CSR and checks its self-signature. */
export function parseCsr(input: string | Uint8Array): Csr {
  try {
    const der = typeof input === "string"
      ? fromPem(input, ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"])
      : Uint8Array.from(input);
    const [info, alg, sig] = children(expectTag(readDer(der), TAG.SEQUENCE, "CSR"));
    if (!sig) throw new Error("CSR has fewer than 3 elements");
    const [, subjectNode, spkiNode] = children(expectTag(info, TAG.SEQUENCE, "CSR info"));
    if (!spkiNode) throw new Error("CSR info has too few elements");
    const spki = expectTag(spkiNode, TAG.SEQUENCE, "SubjectPublicKeyInfo").der;
    const publicKey = loadPublicKey(spki, "CSR public key");
    const hash = SIGNATURE_HASH[readOid(children(alg)[0])];
    let signatureValid = false;
    if (hash) {
      try {
        signatureValid = crypto.verify(hash, info.der, {
          key: publicKey,
          padding: crypto.constants.RSA_PKCS1_PADDING,
        }, readBitString(sig));
      } catch {
        signatureValid = false;
      }
    }
    return { der, subject: parseName(subjectNode), publicKey, spki, signatureValid };
  } catch (cause) {
    const why = describeError(cause);
    throw new Error(`Cannot parse certificate request: ${why}`, { cause });
  }
}
