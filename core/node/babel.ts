// What the node tells babeld (its configuration, PROTOCOL.md §8.3 as adapted in
// core/babel/config.ts) and what it reads back for its status (neighbours identified as nodes
// and their costs, installed routes, known nodes, §7.4).

import { cnFromPrefix } from "../addressing.ts";
import { type BabelConfigInput, tunnelParams } from "../babel/config.ts";
import type { BabelClient } from "../babel/local.ts";
import { deriveModel } from "../babel/model.ts";
import { runFile } from "../constants.ts";
import type { NodeOptions } from "../options/node.ts";
import type { StatusDocument } from "../status/document.ts";
import type { Identity } from "./identity.ts";
import type { EffectiveSettings } from "./settings.ts";

/** babeld's configuration input for this node. */
export function babelInput(
  o: Pick<NodeOptions, "gateway" | "babelArgs" | "run" | "state" | "log">,
  s: EffectiveSettings,
  id: Identity,
  tunnelInterfaces: string[],
  interfaces: string[],
): BabelConfigInput {
  return {
    network: id.network,
    prefix: id.prefix,
    helloS: s.helloS,
    babelDefault: s.babelDefault,
    hmacSign: s.hmacSign,
    hmacAccept: s.hmacSign ? s.hmacAccept : undefined,
    gateway: o.gateway,
    ipv4: s.ipv4 ? { address: s.ipv4.address, length: s.ipv4.plen } : undefined,
    tunnelInterfaces,
    interfaces,
    extraArgs: o.babelArgs,
    paths: {
      config: runFile(o.run, "babeldConfig"),
      socket: runFile(o.run, "babeldSocket"),
      state: `${o.state}/babeld.state`,
      log: `${o.log}/babeld.log`,
    },
  };
}

/** Babel parameters of a tunnel interface announced at run time. */
export function babelTunnelParams(s: EffectiveSettings): string {
  return tunnelParams({
    helloS: s.helloS,
    babelDefault: s.babelDefault,
    hmacSign: s.hmacSign,
    hmacAccept: s.hmacSign ? s.hmacAccept : undefined,
  });
}

/** babeld's part of the status document, and whether the registry node is a known node. */
export function babelStatus(
  babel: BabelClient | null,
  identity: Identity | null,
  registryPrefix: string | null,
): StatusDocument["babel"] & { registryKnown: boolean } {
  if (!babel || !identity) {
    return { running: false, neighbours: [], routes: 0, knownNodes: 0, registryKnown: false };
  }
  const snap = babel.view();
  const model = deriveModel(snap, identity.network, registryPrefix ?? undefined);
  const byNeighbour = new Map<string, string>();
  for (const [prefix, nr] of model.neighbours) {
    byNeighbour.set(`${nr.neighbour.address}%${nr.neighbour.iface}`, cnFromPrefix(prefix));
  }
  return {
    running: babel.connected,
    neighbours: snap.neighbours.map((n) => ({
      address: n.address,
      interface: n.iface,
      cost: n.cost,
      peer: byNeighbour.get(`${n.address}%${n.iface}`) ?? null,
    })),
    routes: snap.routes.filter((r) => r.installed).length,
    knownNodes: model.knownNodes.size,
    registryKnown: registryPrefix !== null && model.registryReachable,
  };
}
