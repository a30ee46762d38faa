// Minimal DER (ITU-T X.690) reader and writer: just what X.509 certificates and CSRs need
// (single-byte tags, definite lengths).

/** Universal tag numbers used by X.509 (with the constructed bit where relevant). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One decoded TLV: `tag` is the whole identifier byte. */
export interface DerNode {
  tag: number;
  /** The complete encoding (identifier, length, content). */
  der: Uint8Array;
  /** The content octets. */
  content: Uint8Array;
}

/** Reads one TLV at `offset`; throws on truncation, long tags or indefinite lengths. */
export function readTlv(buf: Uint8Array, offset = 0): DerNode {
  const fail = (why: string): never => {
    throw new Error(`Invalid DER at offset ${offset}: ${why}`);
  };
  if (offset + 2 > buf.length) fail("truncated header");
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) fail("multi-byte tags are not supported");
  let pos = offset + 1;
  let len = buf[pos++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) fail("indefinite length");
    if (n > 4) fail("length too large");
    if (pos + n > buf.length) fail("truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos++];
  }
  if (pos + len > buf.length) fail(`content of ${len} bytes truncated`);
  return { tag, der: buf.subarray(offset, pos + len), content: buf.subarray(pos, pos + len) };
}

/** Reads a complete DER value that must span the whole buffer. */
export function readDer(buf: Uint8Array): DerNode {
  const node = readTlv(buf, 0);
  if (node.der.length !== buf.length) {
    throw new Error(`Invalid DER: ${buf.length - node.der.length} trailing bytes`);
  }
  return node;
}

/** The TLVs inside a constructed node. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let pos = 0; pos < node.content.length;) {
    const child = readTlv(node.content, pos);
    out.push(child);
    pos += child.der.length;
  }
  return out;
}

/** Throws unless `node` has tag `tag`; returns the node. */
export function expectTag(node: DerNode, tag: number, what: string): DerNode {
  if (node.tag !== tag) {
    throw new Error(
      `Invalid DER: ${what} has tag 0x${node.tag.toString(16)}, expected 0x${tag.toString(16)}`,
    );
  }
  return node;
}

/** Unsigned/signed value of an INTEGER node. */
export function readInteger(node: DerNode): bigint {
  expectTag(node, TAG.INTEGER, "INTEGER");
  const c = node.content;
  if (c.length === 0) throw new Error("Invalid DER: empty INTEGER");
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0] & 0x80) v -= 1n << BigInt(8 * c.length);
  return v;
}

/** Dotted text of an OBJECT IDENTIFIER node. */
export function readOid(node: DerNode): string {
  expectTag(node, TAG.OID, "OBJECT IDENTIFIER");
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of node.content) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (arcs.length === 0) throw new Error("Invalid DER: empty OBJECT IDENTIFIER");
  const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
  return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join(".");
}

/** Text of a string node (UTF8, Printable, IA5, T61 as Latin-1, BMP, Universal). */
export function readString(node: DerNode): string {
  const c = node.content;
  switch (node.tag) {
    case TAG.UTF8_STRING:
      return new TextDecoder("utf-8", { fatal: true }).decode(c);
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.T61_STRING:
      return String.fromCharCode(...c);
    case TAG.BMP_STRING: {
      let s = "";
      for (let i = 0; i + 1 < c.length; i += 2) s += String.fromCharCode((c[i] << 8) | c[i + 1]);
      return s;
    }
    case TAG.UNIVERSAL_STRING: {
      let s = "";
      for (let i = 0; i + 3 < c.length; i += 4) {
        s += String.fromCodePoint(
          ((c[i] << 24) | (c[i + 1] << 16) | (c[i + 2] << 8) | c[i + 3]) >>> 0,
        );
      }
      return s;
    }
    default:
      throw new Error(`Invalid DER: tag 0x${node.tag.toString(16)} is not a string type`);
  }
}

/** Date of a UTCTime or GeneralizedTime node ("...Z" forms as required by RFC 5280). */
export function readTime(node: DerNode): Date {
  const s = String.fromCharCode(...node.content);
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG.UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    year = Number(m[1]);
    year += year < 50 ? 2000 : 1900;
  } else if (
    node.tag === TAG.GENERALIZED_TIME &&
    (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.\d+)?Z$/.exec(s))
  ) {
    year = Number(m[1]);
  } else {
    throw new Error(`Invalid DER time ${JSON.stringify(s)}`);
  }
  return new Date(
    Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])),
  );
}

/** Content of a BIT STRING node without unused bits. */
export function readBitString(node: DerNode): Uint8Array {
  expectTag(node, TAG.BIT_STRING, "BIT STRING");
  if (node.content.length === 0 || node.content[0] !== 0) {
    throw new Error("Invalid DER: BIT STRING with unused bits");
  }
  return node.content.subarray(1);
}

// --- Writer ---

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Encodes one TLV. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concat(content);
  const n = body.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else {
    const lenBytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) lenBytes.unshift(v & 0xff);
    header = [tag, 0x80 | lenBytes.length, ...lenBytes];
  }
  return concat([Uint8Array.from(header), body]);
}

/** SEQUENCE of already encoded elements. */
export const sequence = (...items: Uint8Array[]): Uint8Array => tlv(TAG.SEQUENCE, ...items);

/** SET of already encoded elements, in the given order. */
export const set = (...items: Uint8Array[]): Uint8Array => tlv(TAG.SET, ...items);

/** Context-specific constructed tag [n] around encoded elements. */
export const explicit = (n: number, ...items: Uint8Array[]): Uint8Array => tlv(0xa0 | n, ...items);

/** INTEGER (two's complement, minimal length). */
export function integer(v: bigint | number): Uint8Array {
  let value = BigInt(v);
  const bytes: number[] = [];
  if (value >= 0n) {
    do {
      bytes.unshift(Number(value & 0xffn));
      value >>= 8n;
    } while (value > 0n);
    if (bytes[0] & 0x80) bytes.unshift(0);
  } else {
    do {
      bytes.unshift(Number(value & 0xffn));
      value >>= 8n;
    } while (value < -1n || !(bytes[0] & 0x80));
  }
  return tlv(TAG.INTEGER, Uint8Array.from(bytes));
}

/** OBJECT IDENTIFIER from dotted text. */
export function oid(text: string): Uint8Array {
  const arcs = text.split(".").map((a) => BigInt(a));
  if (arcs.length < 2) throw new Error(`Invalid OID ${text}`);
  const values = [arcs[0] * 40n + arcs[1], ...arcs.slice(2)];
  const bytes: number[] = [];
  for (const v of values) {
    const chunk: number[] = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) chunk.unshift(Number(x & 0x7fn) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(TAG.OID, Uint8Array.from(bytes));
}

/** NULL. */
export const nullValue = (): Uint8Array => Uint8Array.of(TAG.NULL, 0);

/** BIT STRING with no unused bits. */
export const bitString = (bytes: Uint8Array): Uint8Array =>
  tlv(TAG.BIT_STRING, Uint8Array.of(0), bytes);

/** OCTET STRING. */
export const octetString = (bytes: Uint8Array): Uint8Array => tlv(TAG.OCTET_STRING, bytes);

/** BOOLEAN. */
export const boolean = (b: boolean): Uint8Array => Uint8Array.of(TAG.BOOLEAN, 1, b ? 0xff : 0);

/** String of the given string tag (UTF-8 for UTF8String, code units < 256 otherwise). */
export function string(tag: number, text: string): Uint8Array {
  if (tag === TAG.UTF8_STRING) return tlv(tag, new TextEncoder().encode(text));
  if (tag === TAG.PRINTABLE_STRING && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new Error(`${JSON.stringify(text)} is not a PrintableString`);
  }
  if (tag === TAG.IA5_STRING && [...text].some((c) => c.charCodeAt(0) > 0x7f)) {
    throw new Error(`${JSON.stringify(text)} is not an IA5String`);
  }
  return tlv(tag, Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff));
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5); seconds precision. */
export function time(date: Date): Uint8Array {
  const y = date.getUTCFullYear();
  const p = (n: number) => String(n).padStart(2, "0");
  const rest = p(date.getUTCMonth() + 1) + p(date.getUTCDate()) + p(date.getUTCHours()) +
    p(date.getUTCMinutes()) + p(date.getUTCSeconds()) + "Z";
  if (y >= 1950 && y < 2050) return string(TAG.UTC_TIME, p(y % 100) + rest);
  return string(TAG.GENERALIZED_TIME, String(y).padStart(4, "0") + rest);
}

// --- PEM ---

/** PEM text of DER bytes under `label` (64-column base64). */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = der.toBase64();
  let body = "";
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + "\n";
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** DER bytes of the first PEM block with one of `labels`; throws when there is none. */
export function fromPem(text: string, labels: readonly string[]): Uint8Array {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m; (m = re.exec(text));) {
    if (labels.includes(m[1])) {
      try {
        return Uint8Array.fromBase64(m[2]); // ASCII white space is skipped
      } catch (cause) {
        throw new Error(`Invalid base64 in PEM ${m[1]} block`, { cause });
      }
    }
  }
  throw new Error(`No PEM ${labels.join("/")} block found`);
}
