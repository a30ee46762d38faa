// The status document a node serves on its control socket and `re6st status --json` prints.
// Schema: docs/status.md and STATUS_JSON_SCHEMA below. STATUS_SCHEMA_VERSION changes only on
// breaking changes (a field removed or changing meaning); new fields may appear at any time.

/** Version of the status document's schema. */
export const STATUS_SCHEMA_VERSION = 1;

/** One child process supervised by the node. */
export interface ChildStatus {
  /** "babeld", "openvpn-server udp 1194", "openvpn-client 6/16"… */
  name: string;
  pid: number | null;
  state: "starting" | "running" | "restarting" | "stopped" | "failed";
  restarts: number;
  /** Last unexpected exit, in words (exit code and last log line). */
  lastExit: string | null;
}

/** One OpenVPN tunnel. */
export interface TunnelStatus {
  direction: "client" | "server";
  /** Peer prefix in CN form (e.g. "6/16"). */
  peer: string;
  interface: string;
  protocol: string;
  /** Remote endpoint "ip:port", when known. */
  remote: string | null;
  /** ISO time at which the tunnel came up (or was started, if not yet up). */
  since: string;
  established: boolean;
  /** Being retired (drained, then closed, §7.5, §8.4.5). */
  retiring: boolean;
  /** Babel cost of the neighbour on that interface, when babel knows it. */
  babelCost: number | null;
}

/** A babel neighbour. */
export interface NeighbourStatus {
  address: string;
  interface: string;
  cost: number | null;
  /** CN form of the node it was identified as, or null. */
  peer: string | null;
}

/** The whole status document. */
export interface StatusDocument {
  schema: number;
  software: string;
  protocol: number;
  pid: number;
  state: "starting" | "running" | "stopping";
  startedAt: string;
  now: string;
  identity: {
    prefix: string;
    cn: string;
    ip: string;
    subnet: string;
    network: string;
    serial: string;
  };
  certificate: { notAfter: string; renewAt: string };
  registry: {
    url: string;
    reachable: boolean;
    lastContact: string | null;
    lastError: string | null;
  };
  networkConfig: {
    version: number | null;
    hello: number | null;
    clientCount: number | null;
    maxClients: number | null;
    tunnelRefresh: number | null;
    encrypt: boolean | null;
  };
  children: ChildStatus[];
  tunnels: TunnelStatus[];
  peers: { cacheSize: number; connected: number };
  babel: {
    running: boolean;
    neighbours: NeighbourStatus[];
    routes: number;
    /** Node prefixes (CN form) babel has routes to. */
    knownNodes: number;
  };
  /** UPnP port forwarding of the IPv4 servers, null when the node does not use it. */
  upnp: {
    state: "searching" | "mapped" | "client-only" | "stopped";
    gateway: string | null;
    externalIp: string | null;
    mappings: {
      protocol: string;
      externalIp: string;
      externalPort: number;
      internalClient: string;
      internalPort: number;
      leaseEnd: string | null;
    }[];
    lastError: string | null;
  } | null;
  gateway: { enabled: boolean };
  /** Memory of the node process, bytes: resident set, and V8's JavaScript heap within it. */
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  errors: { time: string; message: string }[];
}

const str = { type: "string" };
const strOrNull = { type: ["string", "null"] };
const int = { type: "integer" };
const intOrNull = { type: ["integer", "null"] };
const bool = { type: "boolean" };
const obj = (properties: Record<string, unknown>) => ({
  type: "object",
  required: Object.keys(properties),
  properties,
});
const arr = (items: unknown) => ({ type: "array", items });

/** JSON Schema (draft 2020-12 subset) of StatusDocument. */
export const STATUS_JSON_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  title: "re6st node status",
  ...obj({
    schema: { const: STATUS_SCHEMA_VERSION },
    software: str,
    protocol: int,
    pid: int,
    state: { enum: ["starting", "running", "stopping"] },
    startedAt: str,
    now: str,
    identity: obj({ prefix: str, cn: str, ip: str, subnet: str, network: str, serial: str }),
    certificate: obj({ notAfter: str, renewAt: str }),
    registry: obj({ url: str, reachable: bool, lastContact: strOrNull, lastError: strOrNull }),
    networkConfig: obj({
      version: intOrNull,
      hello: intOrNull,
      clientCount: intOrNull,
      maxClients: intOrNull,
      tunnelRefresh: intOrNull,
      encrypt: { type: ["boolean", "null"] },
    }),
    children: arr(obj({
      name: str,
      pid: intOrNull,
      state: { enum: ["starting", "running", "restarting", "stopped", "failed"] },
      restarts: int,
      lastExit: strOrNull,
    })),
    tunnels: arr(obj({
      direction: { enum: ["client", "server"] },
      peer: str,
      interface: str,
      protocol: str,
      remote: strOrNull,
      since: str,
      established: bool,
      retiring: bool,
      babelCost: intOrNull,
    })),
    peers: obj({ cacheSize: int, connected: int }),
    babel: obj({
      running: bool,
      neighbours: arr(obj({ address: str, interface: str, cost: intOrNull, peer: strOrNull })),
      routes: int,
      knownNodes: int,
    }),
    upnp: {
      type: ["object", "null"],
      required: ["state", "gateway", "externalIp", "mappings", "lastError"],
      properties: {
        state: { enum: ["searching", "mapped", "client-only", "stopped"] },
        gateway: strOrNull,
        externalIp: strOrNull,
        mappings: arr(obj({
          protocol: str,
          externalIp: str,
          externalPort: int,
          internalClient: str,
          internalPort: int,
          leaseEnd: strOrNull,
        })),
        lastError: strOrNull,
      },
    },
    gateway: obj({ enabled: bool }),
    memory: obj({ rss: int, heapUsed: int, heapTotal: int, external: int }),
    errors: arr(obj({ time: str, message: str })),
  }),
} as const;

type Schema = Record<string, unknown>;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Checks a value against a JSON Schema subset (type, const, enum, required, properties, items). */
export function validateSchema(value: unknown, schema: Schema, path = "$"): string[] {
  const errors: string[] = [];
  if ("const" in schema && value !== schema.const) {
    errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${schema.enum.join(", ")}`);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === "integer" && types.includes("number"))) {
      errors.push(`${path}: expected ${types.join(" or ")}, got ${t}`);
      return errors;
    }
  }
  if (typeOf(value) === "object" && schema.properties) {
    const v = value as Record<string, unknown>;
    for (const key of (schema.required as string[] | undefined) ?? []) {
      if (!(key in v)) errors.push(`${path}.${key}: missing`);
    }
    for (const [key, sub] of Object.entries(schema.properties as Record<string, Schema>)) {
      if (key in v) errors.push(...validateSchema(v[key], sub, `${path}.${key}`));
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) =>
      errors.push(...validateSchema(item, schema.items as Schema, `${path}[${i}]`))
    );
  }
  return errors;
}

/** What `--wait` can wait for. */
export type WaitGoal = "connected" | "registry";

/** Whether the node has reached a goal; otherwise, in words, what is missing. */
export function reached(doc: StatusDocument, goal: WaitGoal): { ok: boolean; missing: string } {
  if (doc.state !== "running") return { ok: false, missing: `node is ${doc.state}` };
  if (goal === "registry") {
    return doc.registry.reachable
      ? { ok: true, missing: "" }
      : { ok: false, missing: "registry not reachable through the overlay" };
  }
  const up = doc.tunnels.filter((t) => t.established).length;
  if (up === 0) return { ok: false, missing: "no established tunnel" };
  if (doc.babel.routes === 0) return { ok: false, missing: "no babel route yet" };
  return { ok: true, missing: "" };
}

/** Problems that make a node unhealthy (empty when healthy). */
export function problems(doc: StatusDocument): string[] {
  const out: string[] = [];
  if (doc.state !== "running") out.push(`node is ${doc.state}`);
  if (!doc.babel.running) out.push("babeld is not running");
  for (const c of doc.children) {
    if (c.state !== "running") out.push(`${c.name} is ${c.state}`);
  }
  if (Date.parse(doc.certificate.notAfter) < Date.parse(doc.now)) {
    out.push("certificate has expired");
  }
  return out;
}
