// X.509 distinguished names (subject/issuer) as ordered attribute lists, and the OIDs re6st
// certificates use (PROTOCOL.md §3.4, §3.5).

import {
  children,
  expectTag,
  oid,
  readOid,
  readString,
  sequence,
  set,
  string,
  TAG,
} from "./der.ts";
import type { DerNode } from "./der.ts";

/** OIDs of algorithms and extensions. */
export const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  sha1WithRSAEncryption: "1.2.840.113549.1.1.5",
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
  sha384WithRSAEncryption: "1.2.840.113549.1.1.12",
  sha512WithRSAEncryption: "1.2.840.113549.1.1.13",
  subjectKeyIdentifier: "2.5.29.14",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
} as const;

/** Hash used by each supported RSA signature algorithm OID. */
export const SIGNATURE_HASH: Record<string, string> = {
  [OID.sha1WithRSAEncryption]: "sha1",
  [OID.sha256WithRSAEncryption]: "sha256",
  [OID.sha384WithRSAEncryption]: "sha384",
  [OID.sha512WithRSAEncryption]: "sha512",
};

// Short name, OID, default string type (OpenSSL with string_mask utf8only).
const ATTRS: [string, string, number][] = [
  ["CN", "2.5.4.3", TAG.UTF8_STRING],
  ["SN", "2.5.4.4", TAG.UTF8_STRING],
  ["serialNumber", "2.5.4.5", TAG.PRINTABLE_STRING],
  ["C", "2.5.4.6", TAG.PRINTABLE_STRING],
  ["L", "2.5.4.7", TAG.UTF8_STRING],
  ["ST", "2.5.4.8", TAG.UTF8_STRING],
  ["street", "2.5.4.9", TAG.UTF8_STRING],
  ["O", "2.5.4.10", TAG.UTF8_STRING],
  ["OU", "2.5.4.11", TAG.UTF8_STRING],
  ["title", "2.5.4.12", TAG.UTF8_STRING],
  ["description", "2.5.4.13", TAG.UTF8_STRING],
  ["postalCode", "2.5.4.17", TAG.UTF8_STRING],
  ["name", "2.5.4.41", TAG.UTF8_STRING],
  ["GN", "2.5.4.42", TAG.UTF8_STRING],
  ["initials", "2.5.4.43", TAG.UTF8_STRING],
  ["generationQualifier", "2.5.4.44", TAG.UTF8_STRING],
  ["dnQualifier", "2.5.4.46", TAG.PRINTABLE_STRING],
  ["pseudonym", "2.5.4.65", TAG.UTF8_STRING],
  ["emailAddress", "1.2.840.113549.1.9.1", TAG.IA5_STRING],
  ["UID", "0.9.2342.19200300.100.1.1", TAG.UTF8_STRING],
  ["DC", "0.9.2342.19200300.100.1.25", TAG.IA5_STRING],
];
const LONG_NAMES: Record<string, string> = {
  commonName: "CN",
  surname: "SN",
  countryName: "C",
  localityName: "L",
  stateOrProvinceName: "ST",
  organizationName: "O",
  organizationalUnitName: "OU",
  givenName: "GN",
  userId: "UID",
  domainComponent: "DC",
  streetAddress: "street",
};

/** OID of the subject attribute `CN`. */
export const OID_CN = "2.5.4.3";
/** OID of the subject attribute `serialNumber` (re6st subject serial, §5.6). */
export const OID_SERIAL_NUMBER = "2.5.4.5";

/** One attribute of a distinguished name, as found in the DER. */
export interface NameAttr {
  /** Dotted OID. */
  oid: string;
  /** OpenSSL short name ("CN", "O", "emailAddress", …) or the OID when unknown. */
  name: string;
  value: string;
  /** DER string tag of the value (e.g. TAG.UTF8_STRING). */
  tag: number;
  /** DER of the AttributeTypeAndValue, copied verbatim when re-issuing. */
  der: Uint8Array;
}

/** A subject attribute to encode: a parsed attribute (copied verbatim) or [type, value]. */
export type SubjectEntry = NameAttr | readonly [string, string];

/** OID and OpenSSL short name of an attribute type given as short name, long name or OID. */
export function attrType(type: string): { oid: string; name: string; tag: number } {
  const short = LONG_NAMES[type] ?? type;
  const row = ATTRS.find(([n, o]) => n === short || o === type);
  if (row) return { name: row[0], oid: row[1], tag: row[2] };
  if (/^\d+(\.\d+)+$/.test(type)) return { name: type, oid: type, tag: TAG.UTF8_STRING };
  throw new Error(`Unknown subject attribute type ${JSON.stringify(type)}`);
}

/** Ordered attributes of a Name node (multi-valued RDNs are flattened). */
export function parseName(node: DerNode): NameAttr[] {
  expectTag(node, TAG.SEQUENCE, "Name");
  const out: NameAttr[] = [];
  for (const rdn of children(node)) {
    expectTag(rdn, TAG.SET, "RelativeDistinguishedName");
    for (const atv of children(rdn)) {
      const [typeNode, valueNode] = children(expectTag(atv, TAG.SEQUENCE, "attribute"));
      const o = readOid(typeNode);
      const row = ATTRS.find(([, x]) => x === o);
      out.push({
        oid: o,
        name: row ? row[0] : o,
        value: readString(valueNode),
        tag: valueNode.tag,
        der: atv.der,
      });
    }
  }
  return out;
}

/** DER of the AttributeTypeAndValue of a subject entry. */
export function encodeAttr(entry: SubjectEntry): Uint8Array {
  if (!Array.isArray(entry)) return (entry as NameAttr).der;
  const [type, value] = entry as readonly [string, string];
  const t = attrType(type);
  return sequence(oid(t.oid), string(t.tag, value));
}

/** DER of a Name with one attribute per RDN, in the given order. */
export function encodeName(entries: readonly SubjectEntry[]): Uint8Array {
  return sequence(...entries.map((e) => set(encodeAttr(e))));
}

/** OID of a subject entry. */
export function entryOid(entry: SubjectEntry): string {
  return Array.isArray(entry) ? attrType(entry[0]).oid : (entry as NameAttr).oid;
}

/** Value of the first attribute with OID `o`, if any. */
export function nameValue(attrs: readonly NameAttr[], o: string): string | undefined {
  return attrs.find((a) => a.oid === o)?.value;
}

/** One-line text of a name, "CN=0/16, O=Example" style (for logs and errors). */
export function formatName(attrs: readonly NameAttr[]): string {
  return attrs.map((a) => `${a.name}=${a.value}`).join(", ");
}
