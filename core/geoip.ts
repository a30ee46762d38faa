// GeoIP (PROTOCOL.md §4.6, §5.4, §7.11): where an IP address is, as a MaxMind country (or
// city) database says. platform/geoip.ts reads the file named by GEOIP2_MMDB; this module holds
// what both the registry and the node need: the interface, which address text is looked up,
// and what a database record means.

import { parseIpv4, parseIpv6, unmapIpv4 } from "./addressing.ts";

/** Where an address is: ISO 3166 country code and continent code, each when known. */
export interface Location {
  /** Upper-case ISO 3166-1 alpha-2 code, e.g. "FR". */
  country?: string;
  /** Upper-case continent code, e.g. "EU". */
  continent?: string;
}

/** Country and continent of IP addresses (a GeoIP database). */
export interface GeoIp {
  /** Where `ip` is (IPv4 or IPv6 literal, IPv4-mapped accepted), or null when unknown. */
  lookup(ip: string): Location | null;
}

/** An open GeoIP database file. */
export interface GeoIpDatabase extends GeoIp {
  /** What the database is, for a log line: path, type and build date. */
  readonly description: string;
}

/** Environment variable naming the MaxMind database (§8.6, §9.3). */
export const GEOIP_ENV = "GEOIP2_MMDB";

/**
 * The address as a database indexes it: IPv4 text for IPv4 and IPv4-mapped IPv6 literals, the
 * IPv6 literal otherwise; null when `text` is not an IP literal (host names, zones, ports).
 */
export function geoIpAddress(text: string): string | null {
  const ip = unmapIpv4(text);
  try {
    if (ip.includes(":")) parseIpv6(ip);
    else parseIpv4(ip);
  } catch {
    return null;
  }
  return ip;
}

const CODE_RE = /^[A-Za-z]{2}$/;

/** A two-letter code of a record field, upper-cased; undefined when absent or malformed. */
function code(field: unknown, key: string): string | undefined {
  const v = (field as Record<string, unknown> | null | undefined)?.[key];
  return typeof v === "string" && CODE_RE.test(v) ? v.toUpperCase() : undefined;
}

/**
 * The location in a GeoIP2 country or city record (`country.iso_code`, `continent.code`), or
 * null when it names neither. Codes that are not two letters are ignored: they would end up in
 * address lists (§1.5) and HTTP answers.
 */
export function locationOfRecord(record: unknown): Location | null {
  if (typeof record !== "object" || record === null) return null;
  const r = record as Record<string, unknown>;
  const country = code(r.country, "iso_code");
  const continent = code(r.continent, "code");
  if (country === undefined && continent === undefined) return null;
  return {
    ...(country === undefined ? {} : { country }),
    ...(continent === undefined ? {} : { continent }),
  };
}
