// `re6st status --route ADDR`: the path Babel chose toward an address and the alternatives it
// knows but did not install, from the node's view of babeld's tables (PROTOCOL.md §7.4,
// §8.4.3), with each next hop named as the peer and tunnel it goes through.

import { type Bits, bitsFromIp, cnFromPrefix, ipFromBits } from "../addressing.ts";
import { BABEL_INFINITY, type BabelRoute } from "../babel/parse.ts";
import { deriveModel, neighbourKey, routeNodePrefix } from "../babel/model.ts";
import type { BabelSnapshot } from "../babel/view.ts";
import type { TunnelStatus } from "./document.ts";

/** One route babeld knows toward the address. */
export interface RouteHop {
  /** Destination prefix, e.g. "2001:db8:42:6::/64". */
  prefix: string;
  /** Source prefix of a source-specific route, null for an ordinary one. */
  from: string | null;
  /** CN of the node whose prefix this is, null for a default or foreign prefix. */
  node: string | null;
  /** Babel metric (65535: unreachable, being retracted). */
  metric: number;
  /** Metric announced by the next hop (0: the next hop originates the prefix). */
  refmetric: number;
  /** Link-local address of the next hop. */
  nextHop: string;
  interface: string;
  /** CN of the next hop, when Babel identified it as a node. */
  peer: string | null;
  /** The tunnel on that interface, when it is one of ours. */
  tunnel: { direction: "client" | "server"; protocol: string; peer: string } | null;
  installed: boolean;
  /** Router id of the originator. */
  routerId: string;
}

/** The answer to a route request (control socket `{"request":"route","address":…}`). */
export interface RouteAnswer {
  address: string;
  /** True when the address is in this node's own subnet (nothing to route). */
  local: boolean;
  /** The installed route the kernel uses, or null when babeld installed none. */
  route: RouteHop | null;
  /** Routes toward the same prefix babeld knows but did not install (best metric first). */
  alternatives: RouteHop[];
}

/** What the route lookup needs from the node. */
export interface RouteView {
  snapshot: BabelSnapshot;
  /** Network prefix bits. */
  network: Bits;
  /** Own node prefix bits. */
  prefix: Bits;
  tunnels: readonly TunnelStatus[];
}

/** Destination bits of an IPv6 route, or null for IPv4 and unparsable routes. */
function routeBits(r: { prefix: string; plen: number }): Bits | null {
  if (!r.prefix.includes(":")) return null;
  try {
    return bitsFromIp(r.prefix).slice(0, r.plen);
  } catch {
    return null;
  }
}

const cidr = (bits: Bits) => `${ipFromBits(bits)}/${bits.length}`;
const sameDestination = (a: BabelRoute, b: BabelRoute) =>
  a.prefix === b.prefix && a.plen === b.plen && a.from === b.from && a.fromPlen === b.fromPlen;

/** Babel's path toward `address` (an IPv6 literal; throws when it is not one). */
export function routeTo(address: string, v: RouteView): RouteAnswer {
  const target = bitsFromIp(address);
  const own = v.network + v.prefix;
  const model = deriveModel(v.snapshot, v.network);
  const peerOf = new Map<string, string>();
  for (const [p, nr] of model.neighbours) peerOf.set(neighbourKey(nr.neighbour), cnFromPrefix(p));
  const tunnelOn = new Map(v.tunnels.map((t) => [t.interface, t]));
  const hop = (r: BabelRoute): RouteHop => {
    const bits = routeBits(r)!;
    const node = routeNodePrefix(r, v.network);
    const t = tunnelOn.get(r.iface);
    return {
      prefix: cidr(bits),
      from: r.fromPlen > 0 ? `${r.from}/${r.fromPlen}` : null,
      node: node ? cnFromPrefix(node) : null,
      metric: r.metric,
      refmetric: r.refmetric,
      nextHop: r.via,
      interface: r.iface,
      peer: peerOf.get(neighbourKey({ address: r.via, iface: r.iface })) ?? null,
      tunnel: t ? { direction: t.direction, protocol: t.protocol, peer: t.peer } : null,
      installed: r.installed,
      routerId: r.routerId,
    };
  };
  const matching = v.snapshot.routes.filter((r) => {
    const bits = routeBits(r);
    return bits !== null && target.startsWith(bits);
  });
  // The kernel's choice: the longest installed prefix, ordinary routes before source-specific.
  const installed = matching
    .filter((r) => r.installed && r.metric < BABEL_INFINITY)
    .sort((a, b) => b.plen - a.plen || a.fromPlen - b.fromPlen)[0];
  const longest = Math.max(-1, ...matching.map((r) => r.plen));
  const others = matching
    .filter((r) =>
      r !== installed && (installed ? sameDestination(r, installed) : r.plen === longest)
    )
    .sort((a, b) => a.metric - b.metric);
  return {
    address,
    local: target.startsWith(own),
    route: installed ? hop(installed) : null,
    alternatives: others.map(hop),
  };
}

function describeHop(h: RouteHop): string {
  const via = `via ${h.nextHop} on ${h.interface}`;
  const peer = h.peer ?? h.tunnel?.peer;
  const tunnel = h.tunnel ? ` (${h.tunnel.direction} tunnel, ${h.tunnel.protocol})` : "";
  const metric = h.metric >= BABEL_INFINITY ? "unreachable" : `metric ${h.metric}`;
  return `${h.prefix}${h.from ? ` from ${h.from}` : ""} ${via}${tunnel}` +
    `${peer ? `, peer ${peer}` : ""}, ${metric}`;
}

/** The route answer for people. */
export function renderRoute(a: RouteAnswer): string {
  const row = (label: string, text: string) => `  ${label.padEnd(13)} ${text}`;
  const lines = [`Route to ${a.address}${a.local ? " (this node's own subnet)" : ""}`];
  if (a.route) {
    const toward = a.route.node ? ` toward node ${a.route.node}` : "";
    lines.push(row("chosen:", describeHop(a.route) + toward));
  } else {
    lines.push(row("chosen:", "none: babeld installed no route to it"));
  }
  if (!a.alternatives.length) lines.push(row("alternatives:", "none known"));
  a.alternatives.forEach((h, i) => lines.push(row(i ? "" : "alternatives:", describeHop(h))));
  return lines.join("\n");
}
