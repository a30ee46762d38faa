// What the node derives from a Babel snapshot (PROTOCOL.md §7.4, mapped as in §8.4.3).

import { type Bits, bitsFromIp } from "../addressing.ts";
import { BABEL_INFINITY, type BabelRoute } from "./parse.ts";
import type { BabelSnapshot } from "./view.ts";

/** A Babel neighbour as routes name it: link-local address and interface. */
export interface NeighbourRef {
  address: string;
  iface: string;
}

/** Installed routes through one neighbour, by node prefix (null = default or foreign route). */
export interface NeighbourRoutes {
  neighbour: NeighbourRef;
  routes: Map<Bits | null, BabelRoute>;
}

/** Routes through the neighbours that originate no prefix of the network. */
export interface UnidentifiedRoutes {
  neighbours: NeighbourRef[];
  /** Union of the routes through those neighbours (later neighbours win on equal keys). */
  routes: Map<Bits | null, BabelRoute>;
}

/** The §7.4 model, rebuilt from each snapshot. */
export interface BabelModel {
  /** Every neighbour that at least one usable installed route goes through, by neighbourKey. */
  routesVia: Map<string, NeighbourRoutes>;
  /** Identified neighbours: node prefix → the neighbour originating it and its routes. */
  neighbours: Map<Bits, NeighbourRoutes>;
  /** The reference's NONE entry: null when every neighbour with routes is identified. */
  unidentified: UnidentifiedRoutes | null;
  /** Node prefixes with an installed route. */
  knownNodes: Set<Bits>;
  /** Known nodes that are not identified neighbours. */
  distantNodes: Set<Bits>;
  /** Neighbours originating several node prefixes (to be logged), by neighbourKey. */
  buggy: Map<string, Bits[]>;
  /** True when the registry prefix is a known node (false when no prefix was given). */
  registryReachable: boolean;
}

/** Map key of a neighbour: `<link-local>%<interface>`. */
export function neighbourKey(n: NeighbourRef): string {
  return `${n.address}%${n.iface}`;
}

/**
 * Node prefix (bits after `network`) a route leads to, or null for a default route, a
 * foreign prefix or a prefix not longer than the network; undefined for routes the model
 * ignores (IPv4, unparsable).
 */
export function routeNodePrefix(r: BabelRoute, network: Bits): Bits | null | undefined {
  if (!r.prefix.includes(":") || r.prefix.toLowerCase().startsWith("::ffff:")) return undefined;
  let bits: Bits;
  try {
    bits = bitsFromIp(r.prefix);
  } catch {
    return undefined;
  }
  if (r.plen > network.length && bits.startsWith(network)) {
    return bits.slice(network.length, r.plen);
  }
  return null;
}

/**
 * Builds the §7.4 model from a snapshot: only installed IPv6 routes with a finite metric
 * count (a retracted route stays "installed" with metric 65535 for a while; it is not a
 * path to anybody).
 */
export function deriveModel(
  snapshot: BabelSnapshot,
  network: Bits,
  registryPrefix?: Bits,
): BabelModel {
  const routesVia = new Map<string, NeighbourRoutes>();
  const identified = new Map<string, Bits[]>();
  for (const r of snapshot.routes) {
    if (!r.installed || r.metric >= BABEL_INFINITY) continue;
    const p = routeNodePrefix(r, network);
    if (p === undefined) continue;
    const neighbour = { address: r.via, iface: r.iface };
    const key = neighbourKey(neighbour);
    let nr = routesVia.get(key);
    if (!nr) routesVia.set(key, nr = { neighbour, routes: new Map() });
    nr.routes.set(p, r);
    if (p !== null && r.refmetric === 0) {
      const list = identified.get(key) ?? [];
      if (!list.includes(p)) list.push(p);
      identified.set(key, list);
    }
  }
  const neighbours = new Map<Bits, NeighbourRoutes>();
  const buggy = new Map<string, Bits[]>();
  let unidentified: UnidentifiedRoutes | null = null;
  for (const [key, nr] of routesVia) {
    const prefixes = identified.get(key);
    if (prefixes) {
      if (prefixes.length > 1) buggy.set(key, prefixes);
      for (const p of prefixes) neighbours.set(p, nr);
    } else {
      unidentified ??= { neighbours: [], routes: new Map() };
      unidentified.neighbours.push(nr.neighbour);
      for (const [p, r] of nr.routes) unidentified.routes.set(p, r);
    }
  }
  const knownNodes = new Set<Bits>();
  for (const nr of routesVia.values()) {
    for (const p of nr.routes.keys()) if (p !== null) knownNodes.add(p);
  }
  const distantNodes = new Set([...knownNodes].filter((p) => !neighbours.has(p)));
  return {
    routesVia,
    neighbours,
    unidentified,
    knownNodes,
    distantNodes,
    buggy,
    registryReachable: registryPrefix !== undefined && knownNodes.has(registryPrefix),
  };
}
