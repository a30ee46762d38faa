// `re6st registry --metrics ADDR:PORT`: the metrics of core/registry/metrics.ts served by
// platform/metrics_http.ts, with the database size and open connections read from the machine.
// Loaded only when the option is given.

import type { Logger } from "../core/log.ts";
import { parseListenAddress } from "../core/options/listen.ts";
import { type RegistryMetrics, registryMetrics } from "../core/registry/metrics.ts";
import type { Registry } from "../core/registry/registry.ts";
import { type MetricsServer, serveMetrics } from "../platform/metrics_http.ts";
import { databaseBytes, tcpConnections } from "../platform/net_counters.ts";

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
