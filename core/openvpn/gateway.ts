// `--remote-gateway GW` (PROTOCOL.md §8.1.5): each IPv4 remote of a client tunnel gets a host
// route `<ip>/32 via <GW>`, gateways taken round-robin, routes shared by tunnels to the same
// address (reference-counted) and removed when the last one goes.

import type { RouteSpec } from "../kernel.ts";

/** Host routes towards tunnel remotes through the `--remote-gateway` gateways. */
export interface RemoteGateways {
  /** A tunnel to `ip` starts: returns the route to add, or null when none is needed. */
  add(ip: string): RouteSpec | null;
  /** A tunnel to `ip` ended: returns the route to remove, or null when none is needed. */
  remove(ip: string): RouteSpec | null;
  /** Every route still held (to remove at exit). */
  removeAll(): RouteSpec[];
}

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Route bookkeeping for `gateways` (no routes at all when the list is empty). */
export function remoteGateways(gateways: readonly string[]): RemoteGateways {
  const held = new Map<string, { via: string; count: number }>();
  let next = 0;
  const route = (ip: string, via: string): RouteSpec => ({ dst: `${ip}/32`, via });
  return {
    add(ip) {
      if (gateways.length === 0 || !IPV4_RE.test(ip)) return null;
      const h = held.get(ip);
      if (h) {
        h.count++;
        return null;
      }
      const via = gateways[next++ % gateways.length];
      held.set(ip, { via, count: 1 });
      return route(ip, via);
    },
    remove(ip) {
      const h = held.get(ip);
      if (!h) return null;
      if (--h.count > 0) return null;
      held.delete(ip);
      return route(ip, h.via);
    },
    removeAll() {
      const out = [...held].map(([ip, h]) => route(ip, h.via));
      held.clear();
      return out;
    },
  };
}
