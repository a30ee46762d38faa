// Writes small MaxMind DB files (format 2.0, from MaxMind's public specification) for tests:
// an IPv6 (or IPv4) binary search tree of 24-bit records, the 16-byte separator, the data
// section, then "\xab\xcd\xefMaxMind.com" and the metadata map. IPv4 networks of an IPv6 tree
// live under ::/96, as in MaxMind's own files; ::ffff:0:0/96 is aliased to them.

import { parseIpv4, parseIpv6 } from "../../core/addressing.ts";

/** A value the writer can encode. */
export type MmdbValue =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | MmdbValue[]
  | { [key: string]: MmdbValue };

/** One network ("a.b.c.d/n" or "x::/n") and its record. */
export interface MmdbNetwork {
  network: string;
  data: MmdbValue;
}

/** Options of {@link writeMmdb}. */
export interface MmdbOptions {
  /** 6 (default) or 4. */
  ipVersion?: 4 | 6;
  databaseType?: string;
  /** Build time, UNIX seconds. */
  buildEpoch?: number;
}

const enc = new TextEncoder();
const METADATA_MARKER = Uint8Array.from([0xab, 0xcd, 0xef, ...enc.encode("MaxMind.com")]);
const RECORD_BITS = 24;

/** Type numbers of the data section (spec, "Output Data Section"). */
const T = { string: 2, double: 3, bytes: 4, uint32: 6, map: 7, uint64: 9, array: 11, bool: 14 };

function bigEndian(value: bigint | number, bytes: number): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    out.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

/** Control byte(s) of a field of `type` with payload size (or entry count) `size`. */
function control(type: number, size: number): number[] {
  let sizeBits: number, extra: number[] = [];
  if (size < 29) sizeBits = size;
  else if (size < 285) [sizeBits, extra] = [29, [size - 29]];
  else if (size < 65821) [sizeBits, extra] = [30, bigEndian(size - 285, 2)];
  else [sizeBits, extra] = [31, bigEndian(size - 65821, 3)];
  const head = type <= 7 ? [(type << 5) | sizeBits] : [sizeBits, type - 7];
  return [...head, ...extra];
}

/** The data-section encoding of `v` (no pointers: every value written in full). */
export function encodeValue(v: MmdbValue): number[] {
  if (typeof v === "string") {
    const b = enc.encode(v);
    return [...control(T.string, b.length), ...b];
  }
  if (typeof v === "boolean") return control(T.bool, v ? 1 : 0);
  if (typeof v === "bigint") {
    const b = bigEndian(v, 8);
    while (b.length && b[0] === 0) b.shift();
    return [...control(T.uint64, b.length), ...b];
  }
  if (typeof v === "number") {
    if (Number.isInteger(v) && v >= 0 && v < 2 ** 32) {
      const b = bigEndian(v, 4);
      while (b.length && b[0] === 0) b.shift();
      return [...control(T.uint32, b.length), ...b];
    }
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v);
    return [...control(T.double, 8), ...b];
  }
  if (v instanceof Uint8Array) return [...control(T.bytes, v.length), ...v];
  if (Array.isArray(v)) return [...control(T.array, v.length), ...v.flatMap(encodeValue)];
  const entries = Object.entries(v);
  return [
    ...control(T.map, entries.length),
    ...entries.flatMap(([k, x]) => [
      ...encodeValue(k),
      ...encodeValue(x),
    ]),
  ];
}

/** Bits of a network's address, most significant first, and its prefix length in the tree. */
function networkBits(network: string, ipVersion: 4 | 6): number[] {
  const [addr, len] = network.split("/");
  const n = Number(len);
  let value: bigint, width: number;
  if (addr.includes(":")) {
    if (ipVersion === 4) throw new Error(`IPv6 network ${network} in an IPv4 tree`);
    [value, width] = [parseIpv6(addr), 128];
  } else {
    [value, width] = [BigInt(parseIpv4(addr)), ipVersion === 4 ? 32 : 128];
  }
  const depth = addr.includes(":") || ipVersion === 4 ? n : 96 + n;
  const bits: number[] = [];
  for (let i = 0; i < depth; i++) bits.push(Number((value >> BigInt(width - 1 - i)) & 1n));
  return bits;
}

/** A tree record while building: another node, data (index into `data`), or nothing. */
type Rec = { node: number } | { data: number } | null;

/**
 * The bytes of a MaxMind DB file mapping each network to its record (networks must not
 * overlap); addresses outside every network are unknown.
 */
export function writeMmdb(networks: readonly MmdbNetwork[], o: MmdbOptions = {}): Uint8Array {
  const ipVersion = o.ipVersion ?? 6;
  const nodes: [Rec, Rec][] = [[null, null]];
  const data: number[][] = [];
  const dataIndex = new Map<string, number>();
  for (const { network, data: value } of networks) {
    const bits = networkBits(network, ipVersion);
    if (bits.length === 0) throw new Error(`network ${network} covers the whole tree`);
    const key = JSON.stringify(value, (_, x) => typeof x === "bigint" ? `${x}n` : x);
    let d = dataIndex.get(key);
    if (d === undefined) {
      d = data.push(encodeValue(value)) - 1;
      dataIndex.set(key, d);
    }
    let node = 0;
    for (let i = 0; i < bits.length - 1; i++) {
      const rec = nodes[node][bits[i]];
      if (rec && "data" in rec) throw new Error(`network ${network} overlaps another`);
      if (rec === null) {
        nodes.push([null, null]);
        nodes[node][bits[i]] = { node: nodes.length - 1 };
      }
      node = (nodes[node][bits[i]] as { node: number }).node;
    }
    if (nodes[node][bits.at(-1)!] !== null) throw new Error(`network ${network} overlaps another`);
    nodes[node][bits.at(-1)!] = { data: d };
  }
  if (ipVersion === 6) aliasMappedIpv4(nodes);
  const nodeCount = nodes.length;
  const offsets: number[] = [];
  let size = 0;
  for (const d of data) {
    offsets.push(size);
    size += d.length;
  }
  const value = (r: Rec) =>
    r === null ? nodeCount : "node" in r ? r.node : nodeCount + 16 + offsets[r.data];
  const metadata = encodeValue({
    node_count: nodeCount,
    record_size: RECORD_BITS,
    ip_version: ipVersion,
    database_type: o.databaseType ?? "re6st-Test-Country",
    languages: ["en"],
    binary_format_major_version: 2,
    binary_format_minor_version: 0,
    build_epoch: BigInt(o.buildEpoch ?? 1_700_000_000),
    description: { en: "re6st test database" },
  });
  const nodeBytes = (RECORD_BITS / 8) * 2;
  const treeBytes = nodeCount * nodeBytes;
  const out = new Uint8Array(treeBytes + 16 + size + METADATA_MARKER.length + metadata.length);
  nodes.forEach(([l, r], i) => {
    out.set(bigEndian(value(l), RECORD_BITS / 8), i * nodeBytes);
    out.set(bigEndian(value(r), RECORD_BITS / 8), i * nodeBytes + RECORD_BITS / 8);
  });
  let at = treeBytes + 16; // the separator: 16 zero bytes
  for (const d of data) {
    out.set(d, at);
    at += d.length;
  }
  out.set(METADATA_MARKER, at);
  out.set(metadata, at + METADATA_MARKER.length);
  return out;
}

/** Points ::ffff:0:0/96 at the IPv4 subtree (::/96), as MaxMind's IPv6 files do. */
function aliasMappedIpv4(nodes: [Rec, Rec][]): void {
  let v4: Rec = { node: 0 };
  for (let i = 0; i < 96 && v4 && "node" in v4; i++) v4 = nodes[v4.node][0];
  if (!v4 || !("node" in v4)) return;
  // ::ffff:0:0/96 = 80 zero bits, 16 one bits.
  let node = 0;
  for (let i = 0; i < 95; i++) {
    const bit = i < 80 ? 0 : 1;
    let rec = nodes[node][bit];
    if (rec === null) {
      nodes.push([null, null]);
      rec = nodes[node][bit] = { node: nodes.length - 1 };
    }
    if (!("node" in rec)) return;
    node = rec.node;
  }
  nodes[node][1] = v4;
}

/** A GeoLite2-Country-shaped record. */
export function countryRecord(country: string, continent: string): MmdbValue {
  return {
    continent: { code: continent, geoname_id: 6255148, names: { en: continent } },
    country: { geoname_id: 3017382, iso_code: country, names: { en: country } },
    registered_country: { geoname_id: 3017382, iso_code: country, names: { en: country } },
  };
}

/** The networks of {@link writeTestGeoIp}: documentation ranges in four countries. */
export const TEST_GEOIP_NETWORKS: readonly MmdbNetwork[] = [
  { network: "203.0.113.0/24", data: countryRecord("FR", "EU") },
  { network: "198.51.100.0/25", data: countryRecord("JP", "AS") },
  { network: "192.0.2.0/24", data: countryRecord("AU", "OC") },
  { network: "2001:db8:f000::/36", data: countryRecord("DE", "EU") },
  // A network known only by its continent (as MaxMind's anycast ranges are).
  { network: "198.51.100.128/25", data: { continent: { code: "EU" } } },
];

/** Writes the test database to `<dir>/GeoLite2-Country.mmdb`; returns its path. */
export async function writeTestGeoIp(dir: string): Promise<string> {
  const path = `${dir}/GeoLite2-Country.mmdb`;
  await Deno.writeFile(path, writeMmdb(TEST_GEOIP_NETWORKS));
  return path;
}
