/** Prefix arithmetic to compare and filter kernel state (addresses, routes). */
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from "./addressing.ts";
import type { Family, RouteSpec } from "./kernel.ts";

/** A parsed prefix. */
export interface Prefix {
  family: Family;
  /** Address value (host bits kept, as written). */
  value: bigint;
  len: number;
}

/** Parses `addr[/len]` ("default" is not accepted here); a bare address gets the full length. */
export function parsePrefix(text: string): Prefix {
  const [addr, len, extra] = text.split("/");
  const family: Family = addr.includes(":") ? 6 : 4;
  const bits = family === 6 ? 128 : 32;
  const value = family === 6 ? parseIpv6(addr) : BigInt(parseIpv4(addr));
  const n = len === undefined ? bits : Number(len);
  if (extra !== undefined || !/^\d{1,3}$/.test(len ?? "0") || n > bits) {
    throw new Error(`Invalid prefix ${JSON.stringify(text)}`);
  }
  return { family, value, len: n };
}

function formatValue(family: Family, v: bigint): string {
  return family === 6 ? formatIpv6(v) : formatIpv4(Number(v));
}

/** Canonical `addr/len` text of an address with its length, host bits kept. */
export function canonicalAddress(text: string): string {
  const p = parsePrefix(text);
  return `${formatValue(p.family, p.value)}/${p.len}`;
}

/** Canonical network text with host bits cleared; "default" becomes `::/0` or `0.0.0.0/0`. */
export function canonicalNetwork(text: string, family: Family = 6): string {
  if (text === "default") return family === 6 ? "::/0" : "0.0.0.0/0";
  const p = parsePrefix(text);
  const bits = p.family === 6 ? 128 : 32;
  const mask = ((1n << BigInt(p.len)) - 1n) << BigInt(bits - p.len);
  return `${formatValue(p.family, p.value & mask)}/${p.len}`;
}

/** True when `inner` (address or prefix) lies inside `outer`. */
export function prefixContains(outer: string, inner: string): boolean {
  const o = parsePrefix(canonicalNetwork(outer));
  const i = parsePrefix(inner === "default" ? canonicalNetwork(inner, o.family) : inner);
  if (o.family !== i.family || i.len < o.len) return false;
  const bits = BigInt(o.family === 6 ? 128 : 32);
  const shift = bits - BigInt(o.len);
  return (o.value >> shift) === (i.value >> shift);
}

/** The family of a route, from its destination, gateway or source. */
export function routeFamily(r: RouteSpec): Family {
  if (r.dst !== "default") return r.dst.includes(":") ? 6 : 4;
  if (r.via) return r.via.includes(":") ? 6 : 4;
  if (r.from) return r.from.includes(":") ? 6 : 4;
  return r.family ?? 6;
}

/** A stable identity of a route for comparisons (same text ⇔ same kernel route). */
export function routeKey(r: RouteSpec): string {
  const f = routeFamily(r);
  return [
    f,
    r.type ?? "unicast",
    canonicalNetwork(r.dst, f),
    r.from ? canonicalNetwork(r.from, f) : "",
    r.via ? canonicalAddress(r.via).split("/")[0] : "",
    r.dev ?? "",
    r.proto ?? "",
    r.table === undefined || r.table === "main" || r.table === 254 ? "" : String(r.table),
    r.metric ?? "",
  ].join("|");
}

/** A stable identity of an address on an interface. */
export function addressKey(a: { address: string; dev: string }): string {
  return `${canonicalAddress(a.address)}|${a.dev}`;
}
