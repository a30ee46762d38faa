// The node's status snapshot (./status.ts) as the versioned document of its control socket
// (core/status/document.ts), which `re6st status --json` prints.

import { PROTOCOL_VERSION, SOFTWARE_VERSION, TAP_PREFIX } from "../constants.ts";
import {
  STATUS_SCHEMA_VERSION,
  type StatusDocument,
  type TunnelStatus,
} from "../status/document.ts";
import type { NodeStatus } from "./status.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/** The status document of a node at time `now` (ms). */
export function statusDocument(s: NodeStatus, now: number): StatusDocument {
  const id = s.identity;
  const peerOn = (iface: string): string | null =>
    s.babel.neighbours.find((n) => n.iface === iface && n.peer)?.peer ?? null;
  const costOf = (iface: string, peer: string | null): number | null => {
    const n = s.babel.neighbours.find((x) =>
      x.iface === iface && (peer === null || x.peer === peer)
    );
    return n ? n.cost : null;
  };
  const tunnels: TunnelStatus[] = [
    ...s.tunnels.map((t) => {
      const peer = t.peer ?? peerOn(t.iface);
      return {
        direction: t.direction,
        peer: peer ?? "",
        interface: t.iface,
        protocol: t.protocol,
        remote: t.remote,
        since: iso(t.since),
        established: t.established,
        babelCost: costOf(t.iface, peer),
      };
    }),
    ...s.served.map((c) => ({
      direction: "server" as const,
      peer: c.peer,
      interface: c.iface,
      protocol: c.iface.replace(`${TAP_PREFIX}-`, ""),
      remote: c.remote,
      since: iso(c.since),
      established: true,
      babelCost: costOf(c.iface, c.peer),
    })),
  ];
  const isRegistryNode = id !== null && s.networkConfig.registryPrefix === id.prefix;
  return {
    schema: STATUS_SCHEMA_VERSION,
    software: SOFTWARE_VERSION,
    protocol: PROTOCOL_VERSION,
    pid: s.pid,
    state: s.state === "stopped" ? "stopping" : s.state,
    startedAt: iso(s.startedAt),
    now: iso(now),
    identity: {
      prefix: id?.prefix ?? "",
      cn: id?.cn ?? "",
      ip: id?.ip ?? "",
      subnet: id?.subnet ?? "",
      network: id?.network ?? "",
      serial: id?.serial ?? "",
    },
    certificate: {
      notAfter: s.certificate ? iso(s.certificate.notAfter) : iso(0),
      renewAt: s.certificate?.nextRenewal ? iso(s.certificate.nextRenewal) : iso(0),
    },
    registry: {
      url: s.registry.url,
      // Through the overlay (§7.4); the registry node reaches its registry directly.
      reachable: s.registry.reachableThroughOverlay === true ||
        (isRegistryNode && s.registry.lastContactOk === true),
      lastContact: s.registry.lastContact === null ? null : iso(s.registry.lastContact),
      lastError: s.registry.lastError,
    },
    networkConfig: {
      version: s.networkConfig.version,
      hello: s.networkConfig.hello,
      clientCount: s.networkConfig.clientCount,
      maxClients: s.networkConfig.maxClients,
      tunnelRefresh: s.networkConfig.tunnelRefresh,
      encrypt: s.networkConfig.encrypt,
    },
    children: s.children.map((c) => ({
      name: c.name,
      pid: c.pid,
      state: c.state,
      restarts: c.restarts,
      lastExit: c.lastExit,
    })),
    tunnels,
    // Peers with a direct Babel adjacency identified as nodes (§7.4).
    peers: {
      cacheSize: s.peers.cacheSize,
      connected: s.babel.neighbours.filter((n) => n.peer !== null).length,
    },
    babel: {
      running: s.babel.connected,
      neighbours: s.babel.neighbours.map((n) => ({
        address: n.address,
        interface: n.iface,
        cost: n.cost,
        peer: n.peer,
      })),
      routes: s.babel.routes,
      knownNodes: s.babel.knownNodes,
    },
    gateway: { enabled: s.gateway },
    errors: s.errors.map((e) => ({ time: iso(e.time), message: `${e.level}: ${e.message}` })),
  };
}

/** Answers one control socket request (`{"request": "status"}`). */
export function controlAnswer(
  request: Record<string, unknown>,
  status: () => NodeStatus,
  now: () => number,
): unknown {
  if (request.request === "status") return statusDocument(status(), now());
  return { error: `unknown request ${JSON.stringify(request.request ?? null)}` };
}
