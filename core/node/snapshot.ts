// Builds the status snapshot (core/node/status.ts) from the node's live parts.

import { cnFromPrefix } from "../addressing.ts";
import type { BabelClient } from "../babel/local.ts";
import { deriveModel } from "../babel/model.ts";
import { versionOf } from "../netconfig/version.ts";
import type { NodeOptions } from "../options/node.ts";
import type { NodeCache } from "./cache.ts";
import type { Identity } from "./identity.ts";
import type { EffectiveSettings } from "./settings.ts";
import type { NeighbourInfo, NodeState, NodeStatus, ServedClient } from "./status.ts";
import type { ChildInfo } from "./supervisor.ts";
import type { TunnelInfo } from "./tunnels.ts";

/** What the node hands to {@link buildStatus}. */
export interface StatusInput {
  state: NodeState;
  pid: number;
  startedAt: number;
  options: NodeOptions;
  identity: Identity | null;
  settings: EffectiveSettings | null;
  cache: NodeCache | null;
  registryUrl: string;
  contact: { ok: boolean | null; at: number | null; error: string | null };
  nextRenewal: number | null;
  children: ChildInfo[];
  tunnels: TunnelInfo[];
  served: ServedClient[];
  babel: BabelClient | null;
  errors: NodeStatus["errors"];
}

function babelPart(i: StatusInput): NodeStatus["babel"] & { registry: boolean | null } {
  const b = i.babel;
  if (!b || !i.identity) {
    return { connected: false, neighbours: [], routes: 0, knownNodes: 0, registry: null };
  }
  const snap = b.view();
  const network = i.identity.network;
  const model = deriveModel(snap, network, i.settings?.registryPrefix ?? undefined);
  const byNeighbour = new Map<string, string>();
  for (const [prefix, nr] of model.neighbours) {
    byNeighbour.set(`${nr.neighbour.address}%${nr.neighbour.iface}`, cnFromPrefix(prefix));
  }
  const neighbours: NeighbourInfo[] = snap.neighbours.map((n) => ({
    address: n.address,
    iface: n.iface,
    cost: n.cost,
    peer: byNeighbour.get(`${n.address}%${n.iface}`) ?? null,
  }));
  return {
    connected: b.connected,
    neighbours,
    routes: snap.routes.filter((r) => r.installed).length,
    knownNodes: model.knownNodes.size,
    registry: i.settings?.registryPrefix ? model.registryReachable : null,
  };
}

function versionNumber(cache: NodeCache | null): number | null {
  const v = cache?.version();
  if (!v) return null;
  const n = versionOf(v);
  return n === null ? null : Number(n);
}

/** The status snapshot of a node. */
export function buildStatus(i: StatusInput): NodeStatus {
  const id = i.identity;
  const s = i.settings;
  const { registry, ...babel } = babelPart(i);
  return {
    state: i.state,
    pid: i.pid,
    startedAt: i.startedAt,
    identity: id && {
      prefix: id.prefix,
      cn: id.cn,
      ip: id.ip,
      subnet: id.subnet,
      network: id.networkCidr,
      serial: id.cert.serial.toString(),
      mainInterface: i.options.mainInterface,
    },
    certificate: id && {
      notAfter: id.cert.notAfter.getTime(),
      caNotAfter: id.ca.notAfter.getTime(),
      nextRenewal: i.nextRenewal,
    },
    registry: {
      url: i.registryUrl,
      lastContactOk: i.contact.ok,
      lastContact: i.contact.at,
      lastError: i.contact.error,
      reachableThroughOverlay: registry,
    },
    networkConfig: {
      version: versionNumber(i.cache),
      protocol: s?.protocol ?? null,
      minProtocol: s?.minProtocol ?? null,
      registryPrefix: s?.registryPrefix ?? null,
      hello: s?.helloS ?? null,
      clientCount: s?.clientCount ?? null,
      maxClients: s?.maxClients ?? null,
      tunnelRefresh: s?.tunnelRefreshS ?? null,
      encrypt: s?.encrypt ?? null,
    },
    children: i.children,
    tunnels: i.tunnels,
    served: i.served,
    peers: { cacheSize: i.cache?.peerCount() ?? 0 },
    babel,
    gateway: i.options.gateway,
    errors: [...i.errors],
  };
}
