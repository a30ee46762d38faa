// The node's own address list (PROTOCOL.md §7.10), answered to code 1 requests (§6.5) and
// saved in the cache (row ''). Per address family, either explicit (`--ip` literals), mapped
// (IPv4 through the LAN's UPnP gateway: its external address and ports, core/upnp/) or learned:
// from the address a server saw us coming from (`external_ip`, §8.1.4), and until then from
// the machine's own addresses outside the re6st network.

import { TAP_PREFIX } from "../constants.ts";
import { type Address, type Bits, bitsInNetwork, formatAddressList } from "../addressing.ts";
import { prefixContains } from "../cidr.ts";
import type { Proto } from "../options/node.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** An OpenVPN server the list advertises. */
export interface AdvertisedServer {
  port: number;
  proto: Proto;
}

/** Inputs of {@link createOwnAddresses}. */
export interface OwnAddressesInput {
  /** `--ip` values: IPv4/IPv6 literals, `any`, `upnp`. */
  ips: readonly string[];
  /** OpenVPN servers, in `--pp` order. */
  servers: readonly AdvertisedServer[];
  /** Network bits: addresses inside the re6st network are never advertised. */
  network: Bits;
  /** The list saved by the previous run, if any (keeps learned addresses and countries). */
  cached?: string | null;
  /**
   * The machine's addresses (any interface), `ip/len` (or a bare IP); used while a family has
   * nothing learned, and to tell peers of our own networks from the others.
   */
  local?: readonly string[];
  /** `--country`, for every family. */
  country?: string;
  /** Whether entries carry a country (network parameter `same_country` set). */
  withCountry?: boolean;
}

/** Whether the node maps its IPv4 ports with UPnP (§7.10), and who asked. */
export type UpnpUse = "explicit" | "default" | null;

/** `--ip upnp` asks for UPnP; without any IPv4 `--ip` it is tried by default (not with `--client`). */
export function upnpUse(ips: readonly string[], clientMode: boolean): UpnpUse {
  if (clientMode) return null;
  if (ips.includes("upnp")) return "explicit";
  if (ips.includes("any") || ips.some((ip) => ipFamily(ip) === 4)) return null;
  return "default";
}

/** The own address list, mutable as addresses are learned. */
export interface OwnAddresses {
  /**
   * Current entries, families grouped, in preference order, as a peer at `peer` (its address
   * list, when known) should see them: our private interface addresses go only to peers of our
   * own networks once a server told us how the world sees us.
   */
  list(peer?: readonly Address[] | null): Address[];
  /** Text form with countries when enabled (§1.5), as {@link list} gives it. */
  text(peer?: readonly Address[] | null): string;
  /** Whether the family takes its address from external_ip. */
  learning(family: 4 | 6): boolean;
  /** A server saw us as `ip`: adopt it for its family if learning; true when the list changed. */
  learn(ip: string): boolean;
  /** Our country for a family, when known. */
  country(family: 4 | 6): string | undefined;
  /** Sets our country for a family (from the registry's getCountry); true when it changed. */
  setCountry(family: 4 | 6, code: string): boolean;
  /**
   * The IPv4 entries the UPnP gateway maps for us (external address and ports), or null when
   * UPnP gives none: IPv4 then goes back to learning, unless `--ip upnp` asked for UPnP only.
   */
  setMapped(entries: readonly Address[] | null): void;
  /** First address of each family, to ask the registry for its country. */
  firstIps(): { family: 4 | 6; ip: string }[];
}

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Family of an IP literal, or null for anything else (`any`, names). */
export function ipFamily(ip: string): 4 | 6 | null {
  if (IPV4_RE.test(ip)) return 4;
  if (ip.includes(":")) return 6;
  return null;
}

function serverFamily(proto: Proto): 4 | 6 {
  return proto.endsWith("6") ? 6 : 4;
}

/** Whether a machine address may be advertised: global, not loopback/link-local/re6st. */
export function advertisable(ip: string, network: Bits): boolean {
  const family = ipFamily(ip);
  if (family === 4) return !ip.startsWith("127.") && !ip.startsWith("169.254.");
  if (family !== 6) return false;
  const l = ip.toLowerCase();
  if (l === "::1" || l === "::" || /^fe[89ab]/.test(l) || l.startsWith("::ffff:")) return false;
  try {
    return bitsInNetwork(network, ip) === null;
  } catch {
    return false;
  }
}

/** RFC 1918, shared (CGNAT) and unique local addresses: reachable only inside some network. */
export function isPrivateAddress(ip: string): boolean {
  const f = ipFamily(ip);
  if (f === 6) return /^f[cd]/i.test(ip);
  if (f !== 4) return false;
  const [a, b] = ip.split(".").map(Number);
  return a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b < 128);
}

/** Builds the own address list (§7.10). */
export function createOwnAddresses(input: OwnAddressesInput): OwnAddresses {
  const explicit = new Map<4 | 6, string[]>();
  for (const ip of input.ips) {
    const f = ipFamily(ip);
    if (f) explicit.set(f, [...(explicit.get(f) ?? []), ip]);
  }
  // Families in the order they were first configured or learned: normally IPv4 first.
  const order: (4 | 6)[] = [];
  const note = (f: 4 | 6) => {
    if (!order.includes(f)) order.push(f);
  };
  for (const ip of input.ips) {
    const f = ipFamily(ip);
    if (f) note(f);
  }
  const learned = new Map<4 | 6, string[]>();
  const countries = new Map<4 | 6, string>();
  if (input.country) {
    countries.set(4, input.country);
    countries.set(6, input.country);
  }
  for (const entry of (input.cached ?? "").split(";")) {
    const [ip, , , country] = entry.split(",");
    const f = ipFamily(ip ?? "");
    if (!f || explicit.has(f) || !advertisable(ip, input.network)) continue;
    note(f);
    if (!learned.has(f)) learned.set(f, [ip]);
    if (country && !input.country && !countries.has(f)) countries.set(f, country);
  }
  /** Our interface addresses, and the networks they sit in (`ip/len`). */
  const localIps = new Map<4 | 6, string[]>();
  const localNets: string[] = [];
  for (const entry of input.local ?? []) {
    const [ip, len] = entry.split("/");
    const f = ipFamily(ip);
    if (!f || !advertisable(ip, input.network)) continue;
    if (len) localNets.push(entry);
    localIps.set(f, [...(localIps.get(f) ?? []), ip]);
    if (explicit.has(f)) continue;
    const have = learned.get(f);
    if (have?.length && input.cached) continue; // the saved list wins over interfaces
    note(f);
    if (!have) learned.set(f, [ip]);
    else if (!have.includes(ip)) have.push(ip);
  }
  note(4);
  note(6);
  const upnpOnly = input.ips.includes("upnp");
  /** IPv4 entries mapped by UPnP (null: none; then learning, or nothing with `--ip upnp`). */
  let mapped: Address[] | null = null;

  /** A server told us how the world sees us: private addresses it did not confirm stay home. */
  let told = false;
  const confirmed = new Set<string>();
  const ipsOf = (f: 4 | 6) => f === 4 && upnpOnly ? [] : explicit.get(f) ?? learned.get(f) ?? [];
  const inside = (peer: readonly Address[] | null | undefined) =>
    peer?.some((a) => localNets.some((n) => prefixContains(n, a.ip))) ?? false;
  const visibleIps = (f: 4 | 6, peerInside: boolean): string[] => {
    const ips = ipsOf(f);
    if (explicit.has(f) || (f === 4 && upnpOnly)) return ips;
    if (peerInside) return [...new Set([...ips, ...(localIps.get(f) ?? [])])];
    return told ? ips.filter((ip) => !isPrivateAddress(ip) || confirmed.has(ip)) : ips;
  };
  const list = (peer?: readonly Address[] | null): Address[] => {
    const out: Address[] = [];
    const peerInside = inside(peer);
    for (const f of order) {
      if (f === 4 && mapped?.length) {
        const c = countries.get(4);
        out.push(...mapped.map((a) => (input.withCountry && c ? { ...a, country: c } : { ...a })));
        continue;
      }
      for (const ip of visibleIps(f, peerInside)) {
        for (const s of input.servers) {
          if (serverFamily(s.proto) !== f) continue;
          const a: Address = { ip, port: s.port, proto: s.proto };
          const c = countries.get(f);
          if (input.withCountry && c) a.country = c;
          out.push(a);
        }
      }
    }
    return out;
  };
  return {
    list,
    text: (peer) => formatAddressList(list(peer)),
    learning: (f) => !explicit.has(f) && !(f === 4 && (upnpOnly || mapped?.length)),
    learn(ip) {
      const f = ipFamily(ip);
      if (!f || explicit.has(f) || !advertisable(ip, input.network)) return false;
      if (f === 4 && (upnpOnly || mapped?.length)) return false;
      const wasTold = told;
      told = true;
      confirmed.add(ip);
      const have = learned.get(f);
      // Being told may hide private addresses of the other family: that changes the list too.
      if (have?.length === 1 && have[0] === ip) return !wasTold;
      learned.set(f, [ip]);
      note(f);
      return true;
    },
    country: (f) => countries.get(f),
    setCountry(f, code) {
      if (countries.get(f) === code) return false;
      countries.set(f, code);
      return true;
    },
    setMapped(entries) {
      mapped = entries === null ? null : [...entries];
    },
    firstIps() {
      const out: { family: 4 | 6; ip: string }[] = [];
      for (const f of order) {
        const ip = f === 4 && mapped?.length ? mapped[0].ip : ipsOf(f)[0];
        if (ip && input.servers.some((s) => serverFamily(s.proto) === f)) {
          out.push({ family: f, ip });
        }
      }
      return out;
    },
  };
}

/**
 * Global addresses of the machine from `ip -j addr show` (`ip/len`), except on loopback and
 * re6st's own taps (`re6stnet…`): candidates for the own address list (§7.10).
 */
export function machineAddresses(ipJson: string): string[] {
  let links: unknown;
  try {
    links = JSON.parse(ipJson);
  } catch {
    return [];
  }
  if (!Array.isArray(links)) return [];
  const out: string[] = [];
  for (const l of links as { ifname?: unknown; addr_info?: unknown }[]) {
    if (typeof l?.ifname !== "string" || l.ifname === "lo" || l.ifname.startsWith(TAP_PREFIX)) {
      continue;
    }
    if (!Array.isArray(l.addr_info)) continue;
    for (const a of l.addr_info as { local?: unknown; scope?: unknown; prefixlen?: unknown }[]) {
      if (typeof a?.local !== "string" || a.scope !== "global") continue;
      out.push(typeof a.prefixlen === "number" ? `${a.local}/${a.prefixlen}` : a.local);
    }
  }
  return out;
}

/**
 * Asks the registry for the country of our first address of each family (network parameter
 * `same_country` set, no `--country`, §7.11); returns whether our list changed.
 */
export async function lookupOwnCountries(
  own: OwnAddresses,
  getCountry: (ip: string) => Promise<string | null>,
  log: Logger,
): Promise<boolean> {
  let changed = false;
  for (const { family, ip } of own.firstIps()) {
    try {
      const code = await getCountry(ip);
      if (code && own.setCountry(family, code)) {
        log.info(`Our country for IPv${family} (${ip}): ${code}`);
        changed = true;
      }
    } catch (e) {
      log.warn(`Cannot get the country of ${ip} from the registry: ${describeError(e)}`);
    }
  }
  return changed;
}
