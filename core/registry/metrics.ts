// The registry's Prometheus metrics (`re6st registry --metrics`): requests by method and
// status with their latency, heard through one hook in the request path (service.ts
// onRequest), and, at each scrape, certificates, revocations, sessions, database size and open
// connections. Loaded only when --metrics is given.

import { Counter, Gauge, Histogram, Registry as PromRegistry } from "prom-client";
import type { MetricsEndpoint } from "../metrics/endpoint.ts";
import { PENDING } from "./allocation.ts";
import { METHODS } from "./methods.ts";
import type { Registry } from "./registry.ts";
import type { RpcResponse } from "./rpc.ts";

/** Where the registry's gauges come from. */
export interface RegistryMetricsSource {
  /** The registry once started; null before. */
  registry(): Registry | null;
  /** Bytes of the database on disk (file and journal), or null when unknown. */
  databaseBytes(path: string): Promise<number | null>;
  /** Open TCP connections to the registry's HTTP port, or null when unknown. */
  connections(): Promise<number | null>;
}

/** Latency buckets (s): RSA work takes milliseconds, relay answers wait up to 3 s. */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The registry's metrics and the hook that counts each answered request. */
export interface RegistryMetrics extends MetricsEndpoint {
  /** Counts one answered request and its time (ms). */
  observe(res: RpcResponse, ms: number): void;
}

/** Label of a request's RPC method: a method of §4.6, or "-" (never the client's text). */
function methodLabel(res: RpcResponse): string {
  return res.method !== undefined && Object.hasOwn(METHODS, res.method) ? res.method : "-";
}

/** The registry's metrics. */
export function registryMetrics(source: RegistryMetricsSource): RegistryMetrics {
  const promRegistry = new PromRegistry();
  const registers = [promRegistry];
  let gauges: {
    certificates: number;
    revoked: number;
    sessions: number;
    dbBytes: number | null;
    connections: number | null;
  } | null = null;
  const requests = new Counter({
    name: "re6st_registry_requests_total",
    help: 'Requests answered, by RPC method ("-" when none was recognised) and HTTP status',
    labelNames: ["method", "status"] as const,
    registers,
  });
  const latency = new Histogram({
    name: "re6st_registry_request_duration_seconds",
    help: "Time to answer a request, by RPC method",
    labelNames: ["method"] as const,
    buckets: LATENCY_BUCKETS_S,
    registers,
  });
  const issued = new Counter({
    name: "re6st_registry_certificates_issued_total",
    help: "Certificates issued (requestCertificate) since the registry started",
    registers,
  });
  const revocations = new Counter({
    name: "re6st_registry_revocations_total",
    help: "Successful revoke calls since the registry started",
    registers,
  });
  const gauge = (name: string, help: string, pick: (g: NonNullable<typeof gauges>) => unknown) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const v = gauges ? pick(gauges) : null;
        if (typeof v === "number") this.set(v);
        else this.remove(); // unknown: no sample rather than a misleading 0
      },
    });
  gauge(
    "re6st_registry_certificates",
    "Certificates in the database (prefixes allocated to a node)",
    (g) => g.certificates,
  );
  gauge(
    "re6st_registry_revoked_certificates",
    "Unexpired revoked certificates (entries of the revocation list)",
    (g) => g.revoked,
  );
  gauge("re6st_registry_sessions", "Nodes with an HMAC session (§4.3)", (g) => g.sessions);
  gauge("re6st_registry_database_bytes", "Size of the database on disk", (g) => g.dbBytes);
  gauge("re6st_registry_connections", "Open HTTP connections", (g) => g.connections);

  return {
    contentType: promRegistry.contentType,
    observe(res, ms) {
      const method = methodLabel(res);
      requests.inc({ method, status: String(res.status) });
      latency.observe({ method }, ms / 1000);
      if (method === "requestCertificate" && res.status === 200) issued.inc();
      if (method === "revoke" && res.status === 204) revocations.inc();
    },
    async scrape() {
      const r = source.registry();
      if (r) {
        const count = (sql: string, ...args: string[]) =>
          Number((r.db.sql.prepare(sql).get(...args) as { n: number | bigint }).n);
        const [dbBytes, connections] = await Promise.all([
          r.db.path === ":memory:" ? null : source.databaseBytes(r.db.path),
          source.connections(),
        ]);
        gauges = {
          certificates: count(
            "SELECT count(*) AS n FROM cert WHERE cert IS NOT NULL AND cert != ?",
            PENDING,
          ),
          revoked: count("SELECT count(*) AS n FROM crl"),
          sessions: r.sessions.size,
          dbBytes,
          connections,
        };
      }
      return await promRegistry.metrics();
    },
  };
}
