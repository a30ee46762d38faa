// The HTTP listener of `--metrics ADDR:PORT`: GET /metrics answers the Prometheus text of a
// MetricsEndpoint; nothing else is served.

import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { MetricsEndpoint } from "../core/metrics/endpoint.ts";
import { formatListenAddress, type ListenAddress } from "../core/options/listen.ts";

/** A running metrics listener. */
export interface MetricsServer {
  /** "addr:port" it listens on (the port chosen when 0 was asked). */
  address: string;
  close(): Promise<void>;
}

/** Serves `endpoint` at http://ADDR:PORT/metrics; throws when the address cannot be bound. */
export function serveMetrics(
  at: ListenAddress,
  endpoint: MetricsEndpoint,
  log: Logger,
): MetricsServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: at.hostname,
      port: at.port,
      onListen() {},
      onError(e) {
        log.warn(`Metrics: cannot answer a scrape: ${describeError(e)}`);
        return new Response("cannot collect the metrics\n", { status: 500 });
      },
    }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path !== "/metrics") return new Response("see /metrics\n", { status: 404 });
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response(null, { status: 405, headers: { Allow: "GET, HEAD" } });
      }
      const text = await endpoint.scrape();
      return new Response(req.method === "HEAD" ? null : text, {
        headers: { "Content-Type": endpoint.contentType },
      });
    });
  } catch (e) {
    throw new Error(`Cannot serve metrics on ${formatListenAddress(at)}`, { cause: e });
  }
  const address = formatListenAddress({ hostname: at.hostname, port: server.addr.port });
  log.info(`Metrics at http://${address}/metrics`);
  return { address, close: () => server.shutdown() };
}
