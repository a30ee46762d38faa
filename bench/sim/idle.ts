// Which ticks the simulation may skip. At ten thousand nodes, most ticks of most nodes change
// nothing: the node has its tunnels and the registry in sight. Running them anyway would cost
// the bulk of the run (openTunnels shuffles every distant node for a node behind a NAT that
// already has its two tunnels). A tick is skipped only when, read against TunnelManager.tick,
// it could do nothing but draw random numbers it then ignores; `--full-ticks` runs them all,
// and gives the same figures (bench/simulate.ts).

import type { TunnelSettings } from "../../core/node/tunnels/links.ts";
import type { RoutingView } from "./views.ts";
import type { SimNode } from "./world.ts";

/** What {@link idleTick} reads. */
export interface IdleInput {
  node: SimNode;
  /** The routing the node's next dump would show. */
  view: RoutingView;
  settings: TunnelSettings;
  /** Index of the registry's node. */
  registry: number;
  now: number;
}

/**
 * Null when a tick of the node now may change something; else what the skipped tick would
 * still have done (probe the registry's node, which keeps that session up). A tick changes
 * nothing when: no tunnel has a dead process, no removal runs, no retirement is due, no
 * address request waits, every direct peer's address is cached (learnAddresses), the cache
 * holds its reserve of 2 × client_count peers (learnReserve), and either
 * the node has client_count tunnels (openTunnels returns at once) or, serving nobody, its
 * two tunnels, the registry in sight, no bootstrap back-off, and a distant node it does not
 * avoid (openTunnels then opens nothing).
 */
export function idleTick(i: IdleInput): { probeRegistry: boolean } | null {
  const { node: n, view, settings: s } = i;
  const m = n.manager;
  if (n.i === i.registry || m.removals.size || i.now > m.nextRefresh) return null;
  if (m.opener.connecting.size || n.cache.usablePeerCount() < 2 * s.clientCount) return null;
  const full = m.clients.size >= s.clientCount;
  if (!full) {
    if (n.served.size > 0 || m.clients.size < Math.min(2, s.clientCount)) return null;
    if (m.bootstrap.backingOff) return null;
  }
  // The node's live processes: a tunnel without one has a dead process to clean up.
  if (n.procs.size !== m.clients.size) return null;
  const near = view.neighbours(n.i);
  for (const w of near.keys()) if (!n.cache.hasPeer(view.prefixes[w])) return null;
  for (const e of n.served.entries()) if (!n.cache.hasPeer(e.prefix)) return null;
  if (full) return { probeRegistry: false };
  const reg = s.registryPrefix!;
  const known = view.connected(n.i, i.registry);
  if (!known && !m.clients.has(reg) && !n.served.has(reg)) return null;
  const c = view.label[n.i];
  const distant = view.members(c).some((w) =>
    w !== n.i && !near.has(w) && !m.opener.avoided(view.prefixes[w])
  );
  return distant ? { probeRegistry: known } : null;
}
