// Addressing (PROTOCOL.md §1): bit-strings, CN forms, IPv6 text, address lists, IPv4 payload.
//
// A bit-string is a text made only of "0" and "1", most significant bit first (§0).
// 128-bit values are handled as bigint.

/** A bit-string ("0"/"1" characters, MSB first), e.g. a network or node prefix (§0). */
export type Bits = string;

/** OpenVPN transport names that may appear in an address list (§1.5). */
export type Proto = "udp" | "tcp" | "udp6" | "tcp6" | "udp4" | "tcp4";

/** One advertised tunnel endpoint of an address list (§1.5). */
export interface Address {
  ip: string;
  port: number;
  proto: Proto;
  country?: string;
}

const PROTOS: readonly string[] = ["udp", "tcp", "udp6", "tcp6", "udp4", "tcp4"];
const BITS_RE = /^[01]*$/;

/** Throws unless `bits` is a bit-string of at most `max` characters. */
export function checkBits(bits: string, max = 128, what = "bit-string"): Bits {
  if (!BITS_RE.test(bits)) throw new Error(`Invalid ${what} ${JSON.stringify(bits)}: not 0/1`);
  if (bits.length > max) {
    throw new Error(`Invalid ${what} ${JSON.stringify(bits)}: longer than ${max} bits`);
  }
  return bits;
}

/** Integer value of a bit-string read as unsigned binary (empty → 0n). */
export function bitsToBigInt(bits: Bits): bigint {
  return bits === "" ? 0n : BigInt("0b" + checkBits(bits, Infinity));
}

/** Bit-string of exactly `length` characters holding `value`; throws if it does not fit. */
export function bigIntToBits(value: bigint, length: number): Bits {
  if (value < 0n || (length < 1 ? value !== 0n : value >> BigInt(length) !== 0n)) {
    throw new Error(`Value ${value} does not fit in ${length} bits`);
  }
  return length === 0 ? "" : value.toString(2).padStart(length, "0");
}

/** Network bit-string encoded in a CA certificate serial number (§1.1). */
export function networkFromSerial(serial: bigint): Bits {
  if (serial < 1n) throw new Error(`Invalid CA serial ${serial}: must be a positive integer`);
  const bits = serial.toString(2).slice(1); // drop the marker bit
  if (bits.length > 128) {
    throw new Error(`Invalid CA serial 0x${serial.toString(16)}: network longer than 128 bits`);
  }
  return bits;
}

/** CA serial number that encodes a network bit-string (§1.1, inverse of networkFromSerial). */
export function serialFromNetwork(bits: Bits): bigint {
  checkBits(bits, 128, "network");
  return BigInt("0b1" + bits);
}

/** CN form "V/L" of a node prefix bit-string (§1.2). */
export function cnFromPrefix(bits: Bits): string {
  checkBits(bits, 128, "prefix");
  return `${bitsToBigInt(bits)}/${bits.length}`;
}

/** Node prefix bit-string of a CN form "V/L"; throws on malformed CNs or V ≥ 2^L (§1.2). */
export function prefixFromCn(cn: string): Bits {
  const m = /^(\d+)\/(\d+)$/.exec(cn);
  if (!m) throw new Error(`Invalid CN ${JSON.stringify(cn)}: expected "<value>/<length>"`);
  const value = BigInt(m[1]);
  const length = Number(m[2]);
  if (length > 128) throw new Error(`Invalid CN ${JSON.stringify(cn)}: length above 128`);
  if (length === 0 ? value !== 0n : value >> BigInt(length) !== 0n) {
    throw new Error(`Invalid CN ${JSON.stringify(cn)}: value does not fit in ${length} bits`);
  }
  return bigIntToBits(value, length);
}

/** Canonical IPv6 text (RFC 5952, as glibc inet_ntop) of a 128-bit unsigned integer. */
export function formatIpv6(value: bigint): string {
  if (value < 0n || value >> 128n !== 0n) throw new Error(`Not a 128-bit value: ${value}`);
  const words: number[] = [];
  for (let i = 7; i >= 0; i--) words.push(Number((value >> BigInt(16 * i)) & 0xffffn));
  // Longest run of zero words (first one on ties), only if at least 2 long.
  let bestBase = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [bestBase, bestLen] = [i, j - i];
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    // Encapsulated IPv4 (::a.b.c.d and ::ffff:a.b.c.d), like inet_ntop.
    if (
      i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))
    ) {
      out += formatIpv4(Number(value & 0xffffffffn));
      break;
    }
    out += words[i].toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ":";
  return out;
}

/** 128-bit value of an IPv6 literal, parsed as strictly as inet_pton (no zone index). */
export function parseIpv6(text: string): bigint {
  const bad = () => new Error(`Invalid IPv6 address ${JSON.stringify(text)}`);
  const halves = text.split("::");
  if (halves.length > 2) throw bad();
  const parseGroups = (part: string, last: boolean): number[] => {
    if (part === "") return [];
    const groups = part.split(":");
    const words: number[] = [];
    groups.forEach((g, i) => {
      if (last && i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g, bad);
        words.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        words.push(parseInt(g, 16));
      } else {
        throw bad();
      }
    });
    return words;
  };
  let words: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0], false);
    const tail = parseGroups(halves[1], true);
    if (head.length + tail.length > 7) throw bad();
    words = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    words = parseGroups(text, true);
    if (words.length !== 8) throw bad();
  }
  return words.reduce((acc, w) => (acc << 16n) | BigInt(w), 0n);
}

/** IPv6 text of a bit-string, `suffix` right-aligned in the remaining bits (§1.3). */
export function ipFromBits(bits: Bits, suffix: Bits = ""): string {
  checkBits(bits, 128);
  checkBits(suffix, 128, "suffix");
  const pad = 128 - bits.length;
  if (pad > 0) {
    if (suffix.length > pad) {
      throw new Error(`Suffix ${JSON.stringify(suffix)} does not fit after ${bits.length} bits`);
    }
    bits += suffix.padStart(pad, "0");
  }
  return formatIpv6(BigInt("0b" + bits));
}

/** 128-character bit-string of an IPv6 literal (§1.3). */
export function bitsFromIp(text: string): Bits {
  return parseIpv6(text).toString(2).padStart(128, "0");
}

/** Node IP (`re6stnet_ip`): subnet bits, zeros, last bit 1 (§1.4). */
export function nodeIp(network: Bits, prefix: Bits): string {
  return ipFromBits(network + prefix, "1");
}

/** Node subnet (`re6stnet_subnet`) as "addr/len" (§1.4). */
export function nodeSubnet(network: Bits, prefix: Bits): string {
  const subnet = network + prefix;
  return `${ipFromBits(subnet)}/${subnet.length}`;
}

/** Network (`re6stnet_network`) as "addr/len" (§1.4). */
export function networkCidr(network: Bits): string {
  return `${ipFromBits(network)}/${network.length}`;
}

/**
 * Node prefix bits + host bits of an IPv6 address inside `network`, or null when the address
 * is outside the network (§1.4 reverse mapping, §6.1).
 */
export function bitsInNetwork(network: Bits, ip: string): Bits | null {
  const bits = bitsFromIp(ip);
  return bits.startsWith(network) ? bits.slice(network.length) : null;
}

// --- Address lists (§1.5) ---

/** Options of parseAddressList. */
export interface ParseAddressListOptions {
  /** Called for every entry that is skipped, with the reason (callers log a warning). */
  onSkip?: (entry: string, reason: string) => void;
}

/**
 * Parses an advertised address list "ip,port,proto[,country];…" (§1.5); malformed entries
 * (no comma, bad port, missing or unknown proto) are skipped, not fatal (quirk Q5).
 */
export function parseAddressList(text: string, opts: ParseAddressListOptions = {}): Address[] {
  const out: Address[] = [];
  if (text === "") return out;
  for (const entry of text.split(";")) {
    const fields = entry.split(",");
    const skip = (reason: string) => opts.onSkip?.(entry, reason);
    if (fields.length < 2) {
      skip("no comma");
      continue;
    }
    if (fields.length < 3) {
      skip("missing protocol");
      continue;
    }
    const [ip, portText, proto, country] = fields;
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
      skip(`invalid port ${JSON.stringify(portText)}`);
      continue;
    }
    if (!PROTOS.includes(proto)) {
      skip(`unknown protocol ${JSON.stringify(proto)}`);
      continue;
    }
    if (ip === "") {
      skip("empty address");
      continue;
    }
    const a: Address = { ip, port: Number(portText), proto: proto as Proto };
    if (country) a.country = country;
    out.push(a);
  }
  return out;
}

/** Options of formatAddressList. */
export interface FormatAddressListOptions {
  /** Include the country field when present (default true; false for peers below protocol 7). */
  withCountry?: boolean;
}

/** Text form of an address list (§1.5); an empty list gives "". */
export function formatAddressList(
  list: readonly Address[],
  opts: FormatAddressListOptions = {},
): string {
  const withCountry = opts.withCountry ?? true;
  return list.map((a) => {
    const s = `${a.ip},${a.port},${a.proto}`;
    return withCountry && a.country ? `${s},${a.country}` : s;
  }).join(";");
}

/** Removes the country field of every entry of an address list text (§1.5, protocol < 7). */
export function stripCountry(text: string): string {
  return text.split(";").map((e) => e.split(",").slice(0, 3).join(",")).join(";");
}

// --- IPv4 (§1.6) ---

/** 32-bit unsigned value of a dotted-quad IPv4 literal (strict, like inet_pton). */
export function parseIpv4(text: string, err?: () => Error): number {
  const parts = text.split(".");
  const bad = err ?? (() => new Error(`Invalid IPv4 address ${JSON.stringify(text)}`));
  if (parts.length !== 4) throw bad();
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) throw bad();
    v = v * 256 + Number(p);
  }
  return v;
}

/** Dotted-quad text of a 32-bit unsigned value. */
export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((s) => (value >>> s) & 0xff).join(".");
}

/** The IPv4 payload block of a node (§1.6). */
export interface Ipv4Block {
  /** Node IPv4 address, e.g. "10.42.1.1". */
  address: string;
  /** Block length n = N + sublen. */
  plen: number;
  /** Dotted-quad mask of plen bits. */
  netmask: string;
  /** "x/n", e.g. "10.42.1.0/24". */
  block: string;
}

/**
 * IPv4 block of the node with subject serial `subjectSerial` inside network `ipv4` ("a.b.c.d/N")
 * with `sublen` bits per node (§1.6), or null when IPv4 must be disabled on that node.
 */
export function ipv4Block(ipv4: string, sublen: number, subjectSerial: number): Ipv4Block | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(ipv4);
  if (!m || Number(m[2]) > 32) throw new Error(`Invalid ipv4 network ${JSON.stringify(ipv4)}`);
  const base = parseIpv4(m[1]);
  const n = Number(m[2]) + sublen;
  if (
    !Number.isInteger(sublen) || sublen < 0 || sublen > 16 || n > 32 ||
    !Number.isInteger(subjectSerial) || subjectSerial < 0 || subjectSerial >= 2 ** sublen
  ) return null;
  const x = (base | (subjectSerial * 2 ** (32 - n))) >>> 0;
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return {
    address: formatIpv4(n < 31 ? x + 1 : x),
    plen: n,
    netmask: formatIpv4(mask),
    block: `${formatIpv4(x)}/${n}`,
  };
}

/** Normalised "a.b.c.d/N" text of an IPv4 network option value (§1.6). */
export function normalizeIpv4Network(text: string): string {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m || Number(m[2]) > 32) throw new Error(`Invalid IPv4 network ${JSON.stringify(text)}`);
  return `${formatIpv4(parseIpv4(m[1]))}/${Number(m[2])}`;
}

/** IPv4-mapped IPv6 text ("::ffff:a.b.c.d") as plain IPv4 text; any other text unchanged. */
export function unmapIpv4(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1] : ip;
}

/** Blocks whose addresses are not reachable from the Internet (RFC 6890). */
const NON_PUBLIC: readonly (readonly [string, number])[] = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 3],
];

/** Whether `ip` is an IPv4 address that hosts on the Internet can reach. */
export function isPublicIpv4(ip: string): boolean {
  let v: number;
  try {
    v = parseIpv4(ip);
  } catch {
    return false;
  }
  return !NON_PUBLIC.some(([net, len]) => (v >>> (32 - len)) === (parseIpv4(net) >>> (32 - len)));
}
