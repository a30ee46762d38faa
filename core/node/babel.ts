// What the node tells babeld (its configuration, PROTOCOL.md §8.3 as adapted in
// core/babel/config.ts) and what it reads back for its status (neighbours identified as nodes
// and their costs, installed routes, known nodes, §7.4).

import { cnFromPrefix } from "../addressing.ts";
import { type BabelConfigInput, tunnelParams } from "../babel/config.ts";
import { bytesEqual } from "../crypto.ts";
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
  // While babeld is away its last view is stale: show nothing rather than old routes.
  if (!babel || !identity || !babel.connected) {
    return { running: false, neighbours: [], routes: 0, knownNodes: 0, registryKnown: false };
  }
  const snap = babel.view();
  const model = deriveModel(snap, identity.network, registryPrefix ?? undefined);
  const byNeighbour = new Map<string, string>();
  for (const [prefix, nr] of model.neighbours) {
    byNeighbour.set(`${nr.neighbour.address}%${nr.neighbour.iface}`, cnFromPrefix(prefix));
  }
  return {
    running: true,
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

/** What a change of the settings in force means for babeld (§7.7). */
export type BabelChange =
  | { kind: "none" }
  /** Replace the sign key in place at `atMs` (key rotation phase 2): no restart, no loss. */
  | { kind: "rekey"; key: Uint8Array; atMs: number }
  /** Restart babeld with the new settings (its tunnels and their traffic stay). */
  | { kind: "restart"; reason: string };

/**
 * The change babeld needs from `before` to `after` (docs/babel-key-rotation.md): a new sign key
 * is swapped in place, at the switch time every node shares when the registry gives one; other
 * changes of babel_default or of authentication (on, off, accepting unsigned packets) restart
 * babeld. A new accept key alone changes nothing: stock babeld checks the sign key only.
 */
export function babelChange(
  before: EffectiveSettings,
  after: EffectiveSettings,
  nowMs: number,
): BabelChange {
  if (before.babelDefault !== after.babelDefault) {
    return { kind: "restart", reason: "new Babel parameters: babel_default" };
  }
  const lax = (s: EffectiveSettings) => s.hmacSign !== undefined && s.hmacAccept?.length === 0;
  if (
    (before.hmacSign === undefined) !== (after.hmacSign === undefined) || lax(before) !== lax(after)
  ) {
    return { kind: "restart", reason: "Babel authentication turned on, off or relaxed" };
  }
  if (before.hmacSign && after.hmacSign && !bytesEqual(before.hmacSign, after.hmacSign)) {
    return { kind: "rekey", key: after.hmacSign, atMs: Math.max(nowMs, after.hmacSwitchAtMs ?? 0) };
  }
  return { kind: "none" };
}

/**
 * The sign key babeld starts with, and when it must take the network's sign key: a node that
 * starts while a key switch is still ahead (a restart in the middle of a rotation) signs with
 * the previous key, which its neighbours still sign with, until the shared switch time.
 */
export function startingSignKey(
  s: EffectiveSettings,
  nowMs: number,
): { key: Uint8Array | undefined; switchAtMs: number | null } {
  const at = s.hmacSwitchAtMs;
  if (s.hmacSign && at != null && at > nowMs && s.hmacAccept?.length) {
    return { key: s.hmacAccept, switchAtMs: at };
  }
  return { key: s.hmacSign, switchAtMs: null };
}
