// The node's status: the versioned status document of docs/status.md (core/status/document.ts),
// assembled from the piece each part of the node reports, and the ring of recent errors.

import type { BabelClient } from "../babel/local.ts";
import { PROTOCOL_VERSION, SOFTWARE_VERSION } from "../constants.ts";
import type { Logger } from "../log.ts";
import { versionOf } from "../netconfig/version.ts";
import {
  type ChildStatus,
  STATUS_SCHEMA_VERSION,
  type StatusDocument,
  type TunnelStatus,
} from "../status/document.ts";
import { babelStatus } from "./babel.ts";
import type { Identity } from "./identity.ts";
import type { EffectiveSettings } from "./settings.ts";
import type { UpnpStatus } from "../upnp/forwarding.ts";

/** Life-cycle of the node. */
export type NodeState = "starting" | "running" | "stopping" | "stopped";

/** A recent error or warning. */
export interface ErrorEntry {
  time: number;
  level: "error" | "warning";
  message: string;
}

/** Keeps the last `max` errors and warnings logged through {@link tapErrors}. */
export interface ErrorRing {
  entries: ErrorEntry[];
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

/** The pieces of the node's status, as its parts report them. */
export interface StatusPieces {
  state: NodeState;
  pid: number;
  /** Times in ms since the epoch. */
  startedAt: number;
  now: number;
  identity: Identity | null;
  settings: EffectiveSettings | null;
  /** The signed network version blob in force, if any. */
  version: Uint8Array | null;
  cacheSize: number;
  registry: { url: string; ok: boolean | null; at: number | null; error: string | null };
  /** When the node restarts to renew its certificate or the CA (ms), null before the check. */
  nextRenewal: number | null;
  children: ChildStatus[];
  /** Tunnels, given the Babel cost of a peer's neighbour on an interface. */
  tunnels(costOf: (iface: string, peer: string) => number | null): TunnelStatus[];
  babel: BabelClient | null;
  /** UPnP port forwarding, null when the node does not use it. */
  upnp: UpnpStatus | null;
  gateway: boolean;
  memory: StatusDocument["memory"];
  errors: readonly ErrorEntry[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The node's status document. */
export function nodeStatus(p: StatusPieces): StatusDocument {
  const id = p.identity;
  const s = p.settings;
  const { registryKnown, ...babel } = babelStatus(p.babel, id, s?.registryPrefix ?? null);
  const neighbourOn = (iface: string, peer: string) =>
    babel.neighbours.find((n) => n.interface === iface && (peer === "" || n.peer === peer));
  const tunnels = p.tunnels((iface, peer) => neighbourOn(iface, peer)?.cost ?? null)
    // The --client mode tunnel names no peer: the Babel neighbour on its tap does.
    .map((t) => t.peer ? t : { ...t, peer: neighbourOn(t.interface, "")?.peer ?? "" });
  const isRegistryNode = id !== null && s?.registryPrefix === id.prefix;
  const version = p.version ? versionOf(p.version) : null;
  return {
    schema: STATUS_SCHEMA_VERSION,
    software: SOFTWARE_VERSION,
    protocol: PROTOCOL_VERSION,
    pid: p.pid,
    state: p.state === "stopped" ? "stopping" : p.state,
    startedAt: iso(p.startedAt),
    now: iso(p.now),
    identity: {
      prefix: id?.prefix ?? "",
      cn: id?.cn ?? "",
      ip: id?.ip ?? "",
      subnet: id?.subnet ?? "",
      network: id?.networkCidr ?? "",
      serial: id?.cert.serial.toString() ?? "",
    },
    certificate: {
      notAfter: iso(id?.cert.notAfter.getTime() ?? 0),
      renewAt: iso(p.nextRenewal ?? 0),
    },
    registry: {
      url: p.registry.url,
      // Through the overlay (§7.4); the registry node reaches its registry directly.
      reachable: registryKnown || (isRegistryNode && p.registry.ok === true),
      lastContact: p.registry.at === null ? null : iso(p.registry.at),
      lastError: p.registry.error,
    },
    networkConfig: {
      version: version === null ? null : Number(version),
      hello: s?.helloS ?? null,
      clientCount: s?.clientCount ?? null,
      maxClients: s?.maxClients ?? null,
      tunnelRefresh: s?.tunnelRefreshS ?? null,
      encrypt: s?.encrypt ?? null,
    },
    children: p.children,
    tunnels,
    // Peers with a direct Babel adjacency identified as nodes (§7.4).
    peers: {
      cacheSize: p.cacheSize,
      connected: babel.neighbours.filter((n) => n.peer !== null).length,
    },
    babel,
    upnp: p.upnp,
    gateway: { enabled: p.gateway },
    memory: p.memory,
    errors: p.errors.map((e) => ({ time: iso(e.time), message: `${e.level}: ${e.message}` })),
  };
}
