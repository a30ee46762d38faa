// `--metrics ADDR:PORT` of `re6st node` and `re6st registry`: the metrics of core/metrics and
// core/registry/metrics.ts served by platform/metrics_http.ts. Loaded only when the option is
// given, so that prom-client stays out of a node that does not ask for it.

import type { Logger } from "../core/log.ts";
import { nodeMetrics } from "../core/metrics/node.ts";
import { parseListenAddress } from "../core/options/listen.ts";
import { type RegistryMetrics, registryMetrics } from "../core/registry/metrics.ts";
import type { Registry } from "../core/registry/registry.ts";
import type { StatusDocument } from "../core/status/document.ts";
import { type MetricsServer, serveMetrics } from "../platform/metrics_http.ts";
import { databaseBytes, interfaceCounters, tcpConnections } from "../platform/net_counters.ts";

export type { MetricsServer };

/** Serves the node's metrics at `at` (`ADDR:PORT`), computed from its status document. */
export function serveNodeMetrics(
  at: string,
  status: () => StatusDocument,
  log: Logger,
): MetricsServer {
  const endpoint = nodeMetrics({ status, counters: (iface) => interfaceCounters(iface) });
  return serveMetrics(parseListenAddress(at, "metrics"), endpoint, log);
}

/** The registry's metrics, served at `at`; `attach` gives them the registry once started. */
export function serveRegistryMetrics(at: string, log: Logger): {
  metrics: RegistryMetrics;
  server: MetricsServer;
  attach(registry: Registry, port: number): void;
} {
  let running: { registry: Registry; port: number } | null = null;
  const metrics = registryMetrics({
    registry: () => running?.registry ?? null,
    databaseBytes,
    connections: () => running ? tcpConnections(running.port) : Promise.resolve(null),
  });
  const server = serveMetrics(parseListenAddress(at, "metrics"), metrics, log);
  return { metrics, server, attach: (registry, port) => running = { registry, port } };
}
