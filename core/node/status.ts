// The node's status snapshot: plain data for `re6st status` and the control socket
// (issue "Status"), plus the recent-errors log tap.

import type { Logger } from "../log.ts";
import type { ChildInfo } from "./supervisor.ts";
import type { TunnelInfo } from "./tunnels.ts";

/** Life-cycle of the node. */
export type NodeState = "starting" | "running" | "stopping" | "stopped";

/** A client connected to one of our OpenVPN servers. */
export interface ServedClient {
  /** CN form of the client's prefix. */
  peer: string;
  iface: string;
  serial: string;
  /** Client's real address `ip port`. */
  remote: string;
  since: number;
}

/** A Babel neighbour. */
export interface NeighbourInfo {
  address: string;
  iface: string;
  cost: number;
  /** CN form of the node it originates routes for, when identified (§7.4). */
  peer: string | null;
}

/** A snapshot of what the node is doing; every time is in ms since the epoch. */
export interface NodeStatus {
  state: NodeState;
  pid: number;
  startedAt: number;
  identity: {
    prefix: string;
    cn: string;
    ip: string;
    subnet: string;
    network: string;
    /** Certificate serial, decimal. */
    serial: string;
    mainInterface: string;
  } | null;
  certificate: {
    notAfter: number;
    caNotAfter: number;
    /** When the node restarts to renew the certificate or the CA, null before the check. */
    nextRenewal: number | null;
  } | null;
  registry: {
    url: string;
    /** Outcome of the last exchange with the registry: null before any. */
    lastContactOk: boolean | null;
    lastContact: number | null;
    lastError: string | null;
    /** registry_prefix is a known node in Babel (§7.4), null when unknown. */
    reachableThroughOverlay: boolean | null;
  };
  networkConfig: {
    /** Version number of the signed blob in force, null before the first configuration. */
    version: number | null;
    protocol: number | null;
    minProtocol: number | null;
    registryPrefix: string | null;
    hello: number | null;
    clientCount: number | null;
    maxClients: number | null;
    tunnelRefresh: number | null;
    encrypt: boolean | null;
  };
  /** babeld and every OpenVPN process. */
  children: ChildInfo[];
  tunnels: TunnelInfo[];
  served: ServedClient[];
  peers: { cacheSize: number };
  babel: {
    connected: boolean;
    neighbours: NeighbourInfo[];
    /** Installed routes (IPv6 and IPv4). */
    routes: number;
    /** Node prefixes Babel has an installed route to. */
    knownNodes: number;
  };
  gateway: boolean;
  /** Most recent errors and warnings, oldest first. */
  errors: { time: number; level: "error" | "warning"; message: string }[];
}

/** Keeps the last `max` errors and warnings logged through {@link tapErrors}. */
export interface ErrorRing {
  entries: NodeStatus["errors"];
  max: number;
}

/** Creates an empty ring. */
export function errorRing(max = 20): ErrorRing {
  return { entries: [], max };
}

/** A logger that also records errors and warnings into `ring`. */
export function tapErrors(log: Logger, ring: ErrorRing, now: () => number, prefix = ""): Logger {
  const keep = (level: "error" | "warning", message: string) => {
    ring.entries.push({ time: now(), level, message: prefix + message });
    if (ring.entries.length > ring.max) ring.entries.splice(0, ring.entries.length - ring.max);
  };
  return {
    error: (m) => (keep("error", m), log.error(m)),
    warn: (m) => (keep("warning", m), log.warn(m)),
    info: (m) => log.info(m),
    debug: (m) => log.debug(m),
    trace: (m) => log.trace(m),
    child: (p) => tapErrors(log.child(p), ring, now, `${prefix}${p}: `),
  };
}
