// Pure decisions of the tunnel manager (PROTOCOL.md §7.5, §7.11, §8.4.5): how many tunnels,
// which one to retire, which peers to try, which addresses of a peer may be used.
// No state and no I/O: every input is a parameter, randomness included.

import type { Address, Bits } from "../../addressing.ts";
import type { BabelModel } from "../../babel/model.ts";
import type { BabelSnapshot } from "../../babel/view.ts";
import { routeNodePrefix } from "../../babel/model.ts";
import { BABEL_INFINITY } from "../../babel/parse.ts";

/**
 * Most client tunnels a node keeps (§7.5): `C` when it serves at least one client or is in
 * the bootstrap back-off, else `min(2, C)` (its servers are probably unreachable from outside).
 */
export function tunnelLimit(clientCount: number, serving: boolean, backingOff: boolean): number {
  return serving || backingOff ? clientCount : Math.min(2, clientCount);
}

/**
 * Retirement score of a client tunnel to `p` (§7.5), lowest retired first: -1 (the reference's
 * `()`) when `p` is not an identified neighbour or only brings the default route, else the
 * pair (p ∈ neighbours-to-keep, number of node routes through p) folded into one number.
 */
export function tunnelScore(model: BabelModel, p: Bits, keep: ReadonlySet<Bits>): number {
  const nr = model.neighbours.get(p);
  if (!nr) return -1;
  let routes = 0;
  for (const k of nr.routes.keys()) if (k !== null) routes++;
  if (routes === 0) return -1;
  return (keep.has(p) ? 1_000_000 : 0) + routes;
}

/** Inputs of {@link tunnelToRetire}. */
export interface RetireInput {
  /** Client tunnels, in the order they were opened. */
  connections: readonly Bits[];
  /** Peers whose removal is already in progress. */
  removing: ReadonlySet<Bits>;
  model: BabelModel;
  /** `--neighbour` peers. */
  keep: ReadonlySet<Bits>;
  /** {@link tunnelLimit}. */
  limit: number;
}

/**
 * The client tunnel to retire this round, or null (§7.5): only when at least `limit` tunnels
 * could be retired and they are not exactly the `--neighbour` set; the lowest score wins, the
 * earliest opened among equals.
 */
export function tunnelToRetire(input: RetireInput): Bits | null {
  const candidates = input.connections.filter((p) => !input.removing.has(p));
  if (candidates.length === 0 || input.limit > candidates.length) return null;
  if (
    candidates.length === input.keep.size && candidates.every((p) => input.keep.has(p))
  ) return null;
  let best: Bits | null = null;
  let bestScore = Infinity;
  for (const p of candidates) {
    const s = tunnelScore(input.model, p, input.keep);
    if (s < bestScore) [best, bestScore] = [p, s];
  }
  return best;
}

/**
 * Distant nodes as a candidate stack (§7.5): sorted by `(p ∈ keep) + random()`, so that
 * popping from the end yields `--neighbour` peers first, the others in random order.
 */
export function distantCandidates(
  distant: Iterable<Bits>,
  keep: ReadonlySet<Bits>,
  random: () => number,
): Bits[] {
  return [...distant]
    .map((p) => ({ p, k: (keep.has(p) ? 1 : 0) + random() }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.p);
}

/** Address family of an address-list protocol: 4 for udp/tcp, 6 for udp6/tcp6. */
export function familyOf(proto: string): 4 | 6 {
  return proto.endsWith("6") ? 6 : 4;
}

/** What decides whether an address of a peer may be used (§7.5, §7.11). */
export interface AddressFilter {
  /** Protocols not used for tunnels (`--disable-proto`, no IPv6 subtrees). */
  disabled: readonly string[];
  /** Network parameter `same_country` (empty: no filtering). */
  sameCountry: readonly string[];
  /** Our country for an address family, when known. */
  myCountry(family: 4 | 6): string | undefined;
  /** Country of an address without a country field (GeoIP), when known. */
  lookupCountry?(ip: string): string | undefined;
}

/**
 * Whether `same_country` forbids a tunnel between `mine` and `theirs` (§7.11): only when our
 * own country is known; an address whose country is unknown is skipped (quirk Q6).
 */
export function countryForbids(
  sameCountry: readonly string[],
  mine: string | undefined,
  theirs: string | undefined,
): boolean {
  if (sameCountry.length === 0 || mine === undefined) return false;
  if (theirs === undefined) return true;
  const mineIn = sameCountry.includes(mine);
  return mineIn ? theirs !== mine : sameCountry.includes(theirs);
}

/** The addresses of a peer a tunnel may use, in preference order (§7.5 makeTunnel, §7.11). */
export function usableAddresses(list: readonly Address[], f: AddressFilter): Address[] {
  const disabled = new Set(f.disabled.map((p) => p.replace(/4$/, "")));
  return list.filter((a) => {
    if (disabled.has(a.proto.replace(/4$/, ""))) return false;
    if (f.sameCountry.length === 0) return true;
    const theirs = a.country ?? f.lookupCountry?.(a.ip);
    return !countryForbids(f.sameCountry, f.myCountry(familyOf(a.proto)), theirs);
  });
}

/**
 * Link-local neighbours (`address%iface`) through which `p` is announced as originated
 * (refmetric 0), installed or not: finds a tunnel's Babel neighbour even after its routes
 * moved elsewhere (§8.4.5, server side).
 */
export function neighboursOriginating(
  snapshot: BabelSnapshot,
  network: Bits,
  p: Bits,
): Set<string> {
  const out = new Set<string>();
  for (const r of snapshot.routes) {
    if (r.refmetric !== 0 || r.metric >= BABEL_INFINITY) continue;
    if (routeNodePrefix(r, network) === p) out.add(`${r.via}%${r.iface}`);
  }
  return out;
}

/**
 * Node prefixes (null: default or foreign) of the installed routes going through the
 * neighbour `key` (`address%iface`), except `except` (§8.4.5: a served client's tunnel is
 * drained when nothing but its own prefix still goes through it).
 */
export function routesThrough(
  snapshot: BabelSnapshot,
  network: Bits,
  key: string,
  except?: Bits,
): (Bits | null)[] {
  const out: (Bits | null)[] = [];
  for (const r of snapshot.routes) {
    if (!r.installed || r.metric >= BABEL_INFINITY || `${r.via}%${r.iface}` !== key) continue;
    const p = routeNodePrefix(r, network);
    if (p === undefined || p === except) continue;
    out.push(p);
  }
  return out;
}
