// The node's Prometheus metrics (`re6st node --metrics`), computed at each scrape from the
// status document (core/node/status.ts, docs/status.md) and the kernel's byte and packet
// counters of each tunnel's tap: one source of truth. Loaded only when --metrics is given.

import { Counter, Gauge, Registry } from "prom-client";
import type { StatusDocument, TunnelStatus } from "../status/document.ts";
import type { MetricsEndpoint } from "./endpoint.ts";

/** Byte and packet counters of one interface, as the kernel keeps them. */
export interface TapCounters {
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
}

/** Where the node's metrics come from. */
export interface NodeMetricsSource {
  /** The node's status document. */
  status(): StatusDocument;
  /** Counters of a network interface, or null when it does not exist (any more). */
  counters(iface: string): Promise<TapCounters | null>;
}

/** State of a tunnel as the metrics name it. */
export function tunnelState(t: TunnelStatus): "established" | "retiring" | "starting" {
  return t.retiring ? "retiring" : t.established ? "established" : "starting";
}

/** The program a supervised child runs ("openvpn-client 6/16" → "openvpn"). */
export function programOf(child: string): string {
  return child.split(/[\s-]/)[0];
}

/**
 * Restarts of babeld and OpenVPN since the node started, summed by program, kept monotonic
 * while tunnels (and their OpenVPN clients) come and go.
 */
export class RestartTally {
  readonly totals = new Map<string, number>([["babeld", 0], ["openvpn", 0]]);
  #last = new Map<string, number>();

  /** Adds the restarts seen since the previous call. */
  update(children: StatusDocument["children"]): void {
    const seen = new Map<string, number>();
    for (const c of children) {
      const before = this.#last.get(c.name) ?? 0;
      // Fewer than before: a new child under the same name (a tunnel opened again).
      const delta = c.restarts >= before ? c.restarts - before : c.restarts;
      const program = programOf(c.name);
      this.totals.set(program, (this.totals.get(program) ?? 0) + delta);
      seen.set(c.name, c.restarts);
    }
    this.#last = seen;
  }
}

interface Snapshot {
  doc: StatusDocument;
  taps: Map<string, TapCounters>;
}

const DIRECTIONS = ["client", "server"] as const;
const STATES = ["established", "retiring", "starting"] as const;

/** The node's metrics; each scrape reads the status document and the taps once. */
export function nodeMetrics(source: NodeMetricsSource): MetricsEndpoint {
  const registry = new Registry();
  let snap: Snapshot | null = null;
  const restarts = new RestartTally();
  /** Protocols seen since start, so that a count falling to 0 shows 0 instead of vanishing. */
  const protocols = new Set<string>();
  const registers = [registry];
  const gauge = (name: string, help: string, fill: (doc: StatusDocument) => number | null) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const v = snap ? fill(snap.doc) : null;
        if (v !== null) this.set(v);
        else this.remove(); // unknown: no sample rather than a misleading 0
      },
    });

  new Gauge({
    name: "re6st_node_info",
    help: "Always 1; labels: software version, protocol and the node's CN",
    labelNames: ["version", "protocol", "cn"] as const,
    registers,
    collect() {
      this.reset();
      if (!snap) return;
      const d = snap.doc;
      this.set({ version: d.software, protocol: String(d.protocol), cn: d.identity.cn }, 1);
    },
  });
  gauge(
    "re6st_node_running",
    "1 once the node has started and until it stops",
    (d) => d.state === "running" ? 1 : 0,
  );
  new Gauge({
    name: "re6st_node_tunnels",
    help: "OpenVPN tunnels by direction, protocol and state (starting, established, retiring)",
    labelNames: ["direction", "protocol", "state"] as const,
    registers,
    collect() {
      this.reset();
      if (!snap) return;
      for (const t of snap.doc.tunnels) protocols.add(t.protocol);
      for (const direction of DIRECTIONS) {
        for (const protocol of protocols) {
          for (const state of STATES) {
            const n = snap.doc.tunnels.filter((t) =>
              t.direction === direction && t.protocol === protocol && tunnelState(t) === state
            ).length;
            this.set({ direction, protocol, state }, n);
          }
        }
      }
    },
  });
  const tapCounter = (name: string, help: string, pick: (c: TapCounters) => number) =>
    new Counter({
      name,
      help,
      labelNames: ["interface", "peer", "direction"] as const,
      registers,
      collect() {
        this.reset();
        if (!snap) return;
        for (const t of snap.doc.tunnels) {
          const c = snap.taps.get(t.interface);
          if (c) {
            this.inc({ interface: t.interface, peer: t.peer, direction: t.direction }, pick(c));
          }
        }
      },
    });
  tapCounter(
    "re6st_node_tunnel_receive_bytes_total",
    "Bytes received on a tunnel's tap",
    (c) => c.rxBytes,
  );
  tapCounter(
    "re6st_node_tunnel_transmit_bytes_total",
    "Bytes sent on a tunnel's tap",
    (c) => c.txBytes,
  );
  tapCounter(
    "re6st_node_tunnel_receive_packets_total",
    "Packets received on a tunnel's tap",
    (c) => c.rxPackets,
  );
  tapCounter(
    "re6st_node_tunnel_transmit_packets_total",
    "Packets sent on a tunnel's tap",
    (c) => c.txPackets,
  );
  gauge(
    "re6st_node_babel_running",
    "1 while the node is connected to babeld",
    (d) => d.babel.running ? 1 : 0,
  );
  gauge("re6st_node_babel_routes", "Routes babeld has installed", (d) => d.babel.routes);
  gauge("re6st_node_babel_neighbours", "Babel neighbours", (d) => d.babel.neighbours.length);
  gauge(
    "re6st_node_babel_known_nodes",
    "Nodes of the network babeld has a route to",
    (d) => d.babel.knownNodes,
  );
  gauge("re6st_node_peers_known", "Peer addresses in the cache", (d) => d.peers.cacheSize);
  gauge(
    "re6st_node_peers_connected",
    "Peers with a direct Babel adjacency identified as nodes",
    (d) => d.peers.connected,
  );
  gauge(
    "re6st_node_registry_reachable",
    "1 when the registry's node is reachable through the overlay",
    (d) => d.registry.reachable ? 1 : 0,
  );
  new Counter({
    name: "re6st_node_child_restarts_total",
    help: "Restarts of babeld and OpenVPN processes after they died, by program",
    labelNames: ["program"] as const,
    registers,
    collect() {
      this.reset();
      for (const [program, n] of restarts.totals) this.inc({ program }, n);
    },
  });
  gauge(
    "re6st_node_certificate_expiry_seconds",
    "Seconds until the node's certificate expires (negative once expired)",
    (d) => d.identity.cn ? (Date.parse(d.certificate.notAfter) - Date.parse(d.now)) / 1000 : null,
  );
  gauge(
    "re6st_node_network_config_version",
    "Version of the network configuration in force",
    (d) => d.networkConfig.version,
  );

  return {
    contentType: registry.contentType,
    async scrape() {
      const doc = source.status();
      const taps = new Map<string, TapCounters>();
      await Promise.all(doc.tunnels.map(async (t) => {
        const c = await source.counters(t.interface);
        if (c) taps.set(t.interface, c);
      }));
      restarts.update(doc.children);
      snap = { doc, taps };
      return await registry.metrics();
    },
  };
}
