// The node's own address list (PROTOCOL.md §7.10), answered to code 1 requests (§6.5) and
// saved in the cache (row ''). Per address family, either explicit (`--ip` literals) or
// learned: from the address a server saw us coming from (`external_ip`, §8.1.4), and until
// then from the machine's own addresses outside the re6st network. UPnP is not implemented:
// `--ip upnp` behaves like `any` (learning), as the reference does when no IGD answers.

import { TAP_PREFIX } from "../constants.ts";
import { type Address, type Bits, bitsInNetwork, formatAddressList } from "../addressing.ts";
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
  /** The machine's addresses (any interface); used while a family has nothing learned. */
  local?: readonly string[];
  /** `--country`, for every family. */
  country?: string;
  /** Whether entries carry a country (network parameter `same_country` set). */
  withCountry?: boolean;
}

/** The own address list, mutable as addresses are learned. */
export interface OwnAddresses {
  /** Current entries, families grouped, in preference order. */
  list(): Address[];
  /** Text form with countries when enabled (§1.5). */
  text(): string;
  /** Whether the family takes its address from external_ip. */
  learning(family: 4 | 6): boolean;
  /** A server saw us as `ip`: adopt it for its family if learning; true when the list changed. */
  learn(ip: string): boolean;
  /** Our country for a family, when known. */
  country(family: 4 | 6): string | undefined;
  /** Sets our country for a family (from the registry's getCountry); true when it changed. */
  setCountry(family: 4 | 6, code: string): boolean;
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
  for (const ip of input.local ?? []) {
    const f = ipFamily(ip);
    if (!f || explicit.has(f) || !advertisable(ip, input.network)) continue;
    const have = learned.get(f);
    if (have?.length && input.cached) continue; // the saved list wins over interfaces
    note(f);
    if (!have) learned.set(f, [ip]);
    else if (!have.includes(ip)) have.push(ip);
  }
  note(4);
  note(6);

  const ipsOf = (f: 4 | 6) => explicit.get(f) ?? learned.get(f) ?? [];
  const list = (): Address[] => {
    const out: Address[] = [];
    for (const f of order) {
      for (const ip of ipsOf(f)) {
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
    text: () => formatAddressList(list()),
    learning: (f) => !explicit.has(f),
    learn(ip) {
      const f = ipFamily(ip);
      if (!f || explicit.has(f) || !advertisable(ip, input.network)) return false;
      const have = learned.get(f);
      if (have?.length === 1 && have[0] === ip) return false;
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
    firstIps() {
      const out: { family: 4 | 6; ip: string }[] = [];
      for (const f of order) {
        const ip = ipsOf(f)[0];
        if (ip && input.servers.some((s) => serverFamily(s.proto) === f)) {
          out.push({ family: f, ip });
        }
      }
      return out;
    },
  };
}

/**
 * Global addresses of the machine from `ip -j addr show`, except on loopback and re6st's own
 * taps (`re6stnet…`): candidates for the own address list (§7.10).
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
    for (const a of l.addr_info as { local?: unknown; scope?: unknown }[]) {
      if (typeof a?.local === "string" && a.scope === "global") out.push(a.local);
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
