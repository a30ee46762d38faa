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

const DIRECTORY_STRING = [
  TAG.UTF8_STRING,
  TAG.PRINTABLE_STRING,
  TAG.T61_STRING,
  TAG.BMP_STRING,
  TAG.UNIVERSAL_STRING,
];

/** String types each attribute may use (RFC 5280 appendix A); DirectoryString otherwise. */
const ALLOWED_TAGS: Record<string, readonly number[]> = {
  "2.5.4.5": [TAG.PRINTABLE_STRING], // serialNumber
  "2.5.4.6": [TAG.PRINTABLE_STRING], // C
  "2.5.4.46": [TAG.PRINTABLE_STRING], // dnQualifier
  "1.2.840.113549.1.9.1": [TAG.IA5_STRING], // emailAddress
  "0.9.2342.19200300.100.1.25": [TAG.IA5_STRING], // DC
};

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
/** C0 and C1 control characters and DEL. */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why the content of a string of type `tag` is not valid, or null when it is: the encoding
 * rules of its type (UTF-8, PrintableString alphabet, 7-bit IA5, BMPString of even length,
 * UniversalString of 4-byte characters, no surrogates) and no control character.
 */
export function stringProblem(tag: number, content: Uint8Array): string | null {
  let text: string;
  switch (tag) {
    case TAG.UTF8_STRING:
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(content);
      } catch {
        return "invalid UTF-8";
      }
      break;
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.T61_STRING:
      text = String.fromCharCode(...content);
      if (tag === TAG.PRINTABLE_STRING && !PRINTABLE.test(text)) {
        return "character outside the PrintableString alphabet";
      }
      if (tag === TAG.IA5_STRING && content.some((b) => b > 0x7f)) return "byte above 0x7f";
      break;
    case TAG.BMP_STRING:
    case TAG.UNIVERSAL_STRING: {
      const width = tag === TAG.BMP_STRING ? 2 : 4;
      if (content.length % width) return `length ${content.length} not a multiple of ${width}`;
      const codes: number[] = [];
      for (let i = 0; i < content.length; i += width) {
        let c = 0;
        for (let j = 0; j < width; j++) c = c * 256 + content[i + j];
        if ((c >= 0xd800 && c < 0xe000) || c > 0x10ffff) {
          return `invalid character U+${c.toString(16).toUpperCase()}`;
        }
        codes.push(c);
      }
      text = String.fromCodePoint(...codes);
      break;
    }
    default:
      return `tag 0x${tag.toString(16)} is not a string type`;
  }
  const bad = CONTROL.exec(text);
  if (bad) {
    return `control character U+${
      bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")
    }`;
  }
  return null;
}

/**
 * Why attribute `oid` with value node `value` could not be copied into a certificate that
 * OpenSSL loads, or null: a known type, a string type allowed for it, a valid string.
 */
function attrProblem(oid: string, value: DerNode): string | null {
  if (!ATTRS.some(([, o]) => o === oid)) return "unknown attribute type";
  const allowed = ALLOWED_TAGS[oid] ?? DIRECTORY_STRING;
  if (!allowed.includes(value.tag)) {
    return `string type 0x${value.tag.toString(16)} not allowed for this attribute`;
  }
  const problem = stringProblem(value.tag, value.content);
  if (problem) return problem;
  if (oid === "2.5.4.6" && value.content.length !== 2) return "a country is 2 letters";
  return null;
}

/**
 * Ordered attributes of a Name node (multi-valued RDNs are flattened). `strict` refuses any
 * attribute attrProblem finds wrong (names from the network that end up in a certificate).
 */
export function parseName(node: DerNode, opts: { strict?: boolean } = {}): NameAttr[] {
  expectTag(node, TAG.SEQUENCE, "Name");
  const out: NameAttr[] = [];
  for (const rdn of children(node)) {
    expectTag(rdn, TAG.SET, "RelativeDistinguishedName");
    for (const atv of children(rdn)) {
      const parts = children(expectTag(atv, TAG.SEQUENCE, "attribute"));
      const [typeNode, valueNode] = parts;
      const o = readOid(typeNode);
      if (opts.strict) {
        if (parts.length !== 2) throw new Error("subject attribute is not a type and a value");
        const problem = attrProblem(o, valueNode);
        if (problem) {
          const row = ATTRS.find(([, x]) => x === o);
          throw new Error(`subject attribute ${row ? row[0] : o}: ${problem}`);
        }
      }
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
