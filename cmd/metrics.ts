// `re6st node --metrics ADDR:PORT`: the metrics of core/metrics/node.ts served by
// platform/metrics_http.ts. Loaded only when the option is given, so that prom-client stays out
// of a node that does not ask for it (the registry's are in registry_metrics.ts).

import type { Logger } from "../core/log.ts";
import { nodeMetrics } from "../core/metrics/node.ts";
import { parseListenAddress } from "../core/options/listen.ts";
import type { StatusDocument } from "../core/status/document.ts";
import { type MetricsServer, serveMetrics } from "../platform/metrics_http.ts";
import { interfaceCounters } from "../platform/net_counters.ts";

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
