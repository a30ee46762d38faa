// `--remote-gateway GW` (PROTOCOL.md §8.1.5): each IPv4 remote of a client tunnel gets a host
// route `ip -4 route add <ip>/32 via <GW>`, gateways taken round-robin, routes shared by
// tunnels to the same address (reference-counted) and removed when the last one goes.

/** Host routes towards tunnel remotes through the `--remote-gateway` gateways. */
export interface RemoteGateways {
  /** A tunnel to `ip` starts: returns the `ip` command to run, or null when none is needed. */
  add(ip: string): string[] | null;
  /** A tunnel to `ip` ended: returns the `ip` command to run, or null when none is needed. */
  remove(ip: string): string[] | null;
  /** Commands removing every route still held (at exit). */
  removeAll(): string[][];
}

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Route bookkeeping for `gateways` (no routes at all when the list is empty). */
export function remoteGateways(gateways: readonly string[]): RemoteGateways {
  const held = new Map<string, { via: string; count: number }>();
  let next = 0;
  const del = (ip: string, via: string) => ["ip", "-4", "route", "del", `${ip}/32`, "via", via];
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
      return ["ip", "-4", "route", "add", `${ip}/32`, "via", via];
    },
    remove(ip) {
      const h = held.get(ip);
      if (!h) return null;
      if (--h.count > 0) return null;
      held.delete(ip);
      return del(ip, h.via);
    },
    removeAll() {
      const out = [...held].map(([ip, h]) => del(ip, h.via));
      held.clear();
      return out;
    },
  };
}
