// `re6st status --follow`: one JSON line per change of a running node (tunnel opened,
// established, retiring or closed; Babel peer added or lost; route to a node gained, lost or
// moved to another next hop; network configuration version; node state), found by comparing
// what the node reports every second (the status document and babeld's installed routes).

import { type Bits, cnFromPrefix } from "../addressing.ts";
import { routeNodePrefix } from "../babel/model.ts";
import { BABEL_INFINITY } from "../babel/parse.ts";
import type { BabelSnapshot } from "../babel/view.ts";
import type { Clock } from "../clock.ts";
import type { StatusDocument } from "./document.ts";

/** How often a follower compares the node's state (ms). */
export const FOLLOW_INTERVAL_MS = 1000;

/** A tunnel as a follower sees it. */
export interface FollowTunnel {
  peer: string;
  direction: "client" | "server";
  protocol: string;
  established: boolean;
  retiring: boolean;
}

/** The installed route toward a node. */
export interface FollowRoute {
  prefix: string;
  via: string;
  interface: string;
  /** CN of the next hop, when identified. */
  peer: string | null;
}

/** What a follower compares from one second to the next. */
export interface FollowState {
  cn: string;
  state: StatusDocument["state"];
  version: number | null;
  /** By interface. */
  tunnels: Map<string, FollowTunnel>;
  /** CNs of the nodes that are direct Babel neighbours. */
  peers: Set<string>;
  /** Installed route toward each node, by the node's CN. */
  routes: Map<string, FollowRoute>;
}

/** One line of `--follow`: an event name and its details (a `time` is added when sent). */
export type FollowEvent = { event: string } & Record<string, unknown>;

/** The follower's view of a node: its status document and babeld's tables (null: none yet). */
export function followState(
  doc: StatusDocument,
  babel: { snapshot: BabelSnapshot; network: Bits } | null,
): FollowState {
  const peerOf = new Map(
    doc.babel.neighbours.map((n) => [`${n.address}%${n.interface}`, n.peer] as const),
  );
  const routes = new Map<string, FollowRoute & { plen: number }>();
  for (const r of babel?.snapshot.routes ?? []) {
    if (!r.installed || r.metric >= BABEL_INFINITY || r.fromPlen > 0) continue;
    const node = routeNodePrefix(r, babel!.network);
    if (!node) continue;
    const cn = cnFromPrefix(node);
    if ((routes.get(cn)?.plen ?? -1) >= r.plen) continue;
    routes.set(cn, {
      prefix: `${r.prefix}/${r.plen}`,
      via: r.via,
      interface: r.iface,
      peer: peerOf.get(`${r.via}%${r.iface}`) ?? null,
      plen: r.plen,
    });
  }
  return {
    cn: doc.identity.cn,
    state: doc.state,
    version: doc.networkConfig.version,
    tunnels: new Map(doc.tunnels.map((t) => [t.interface, {
      peer: t.peer,
      direction: t.direction,
      protocol: t.protocol,
      established: t.established,
      retiring: t.retiring,
    }])),
    peers: new Set(doc.babel.neighbours.flatMap((n) => n.peer ? [n.peer] : [])),
    routes: new Map([...routes].map(([cn, { plen: _, ...r }]) => [cn, r])),
  };
}

/** The changes from `prev` to `next`, one event each, in a stable order. */
export function changes(prev: FollowState, next: FollowState): FollowEvent[] {
  const out: FollowEvent[] = [];
  if (prev.state !== next.state) out.push({ event: "node-state", state: next.state });
  if (prev.version !== next.version) {
    out.push({ event: "config-version", from: prev.version, to: next.version });
  }
  for (const [iface, t] of next.tunnels) {
    const before = prev.tunnels.get(iface);
    const what = { interface: iface, ...t };
    if (!before || before.peer !== t.peer) out.push({ event: "tunnel-opened", ...what });
    if (t.established && !before?.established) out.push({ event: "tunnel-established", ...what });
    if (t.retiring && !before?.retiring) out.push({ event: "tunnel-retiring", ...what });
  }
  for (const [iface, t] of prev.tunnels) {
    const after = next.tunnels.get(iface);
    if (!after || after.peer !== t.peer) {
      out.push({ event: "tunnel-closed", interface: iface, peer: t.peer, direction: t.direction });
    }
  }
  for (const p of next.peers) if (!prev.peers.has(p)) out.push({ event: "peer-added", peer: p });
  for (const p of prev.peers) if (!next.peers.has(p)) out.push({ event: "peer-lost", peer: p });
  for (const [node, r] of next.routes) {
    const before = prev.routes.get(node);
    if (!before) out.push({ event: "route-gained", node, ...r });
    else if (before.via !== r.via || before.interface !== r.interface) {
      out.push({ event: "route-changed", node, ...r, was: { via: before.via, peer: before.peer } });
    }
  }
  for (const [node, r] of prev.routes) {
    if (!next.routes.has(node)) out.push({ event: "route-lost", node, prefix: r.prefix });
  }
  return out;
}

/** What a follower needs from the node. */
export interface FollowSource {
  state(): FollowState;
  clock: Clock;
  /** Aborted when the node stops: the stream ends with a "node-stopping" line. */
  nodeEnd: AbortSignal;
  intervalMs?: number;
}

/**
 * The lines of one follower: a "following" line with the current state, then one line per
 * change, until `signal` aborts (the client went away) or the node stops.
 */
export async function* followLines(
  src: FollowSource,
  signal: AbortSignal,
): AsyncGenerator<FollowEvent & { time: string }> {
  const stamp = (e: FollowEvent) => ({ time: new Date(src.clock.now()).toISOString(), ...e });
  let prev = src.state();
  yield stamp({
    event: "following",
    node: prev.cn,
    state: prev.state,
    version: prev.version,
    tunnels: prev.tunnels.size,
    peers: prev.peers.size,
    routes: prev.routes.size,
  });
  const stop = AbortSignal.any([signal, src.nodeEnd]);
  while (!src.nodeEnd.aborted) {
    if (signal.aborted) return;
    await src.clock.sleep(src.intervalMs ?? FOLLOW_INTERVAL_MS, stop);
    if (src.nodeEnd.aborted) break;
    if (signal.aborted) return;
    const next = src.state();
    for (const e of changes(prev, next)) yield stamp(e);
    prev = next;
  }
  yield stamp({ event: "node-stopping" });
}
