// The node's side of the peer protocol (PROTOCOL.md §6, §7.7): one PeerProtocol on the node's
// UDP socket, its messages handed to the tunnel manager (addresses, tunnel retirement,
// topology) and to the network configuration updates (newer versions).

import { type Bits, cnFromPrefix } from "../addressing.ts";
import type { Clock } from "../clock.ts";
import { softwareInfo } from "../constants.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { PeerProtocol } from "../peer/protocol.ts";
import type { Identity } from "./identity.ts";
import { isRevoked } from "./revocation.ts";
import type { EffectiveSettings } from "./settings.ts";
import type { TunnelManager } from "./tunnels/manager.ts";

/** What the node's peer protocol is wired to. */
export interface PeeringOptions {
  identity: Identity;
  settings(): EffectiveSettings;
  /** Our current signed network version, if any. */
  version: Uint8Array | null;
  /** Our address list text (§7.10) for the peer `prefix` (null: any newcomer). */
  addressList(prefix: Bits | null): string;
  manager: TunnelManager;
  /** A newer network configuration exists: fetch it (netconfig.ts). */
  onNewerVersion(): void;
  send(host: string, port: number, bytes: Uint8Array): Promise<void> | void;
  clock: Clock;
  log: Logger;
}

/** The peer protocol of a node. */
export function nodePeerProtocol(o: PeeringOptions): PeerProtocol {
  const { identity, manager, log } = o;
  return new PeerProtocol({
    network: identity.network,
    prefix: identity.prefix,
    cert: identity.cert.der,
    key: identity.key,
    ca: identity.ca,
    isRevoked: (serial) => isRevoked(o.settings().crl, serial),
    version: o.version,
    send: o.send,
    clock: o.clock,
    log: log.child("peer"),
    minProtocol: () => o.settings().minProtocol,
    registryPrefix: () => o.settings().registryPrefix,
    handlers: {
      addressList: o.addressList,
      onAddress: (p: Bits, list) =>
        void manager.onAddress(p, list).catch((e) =>
          log.error(`Cannot use the address list of ${cnFromPrefix(p)}: ${describeError(e)}`)
        ),
      onNewerVersion: o.onNewerVersion,
      onRegistryVersion: o.onNewerVersion,
      onTunnelKillRequest: (p) => manager.onKillRequest(p),
      onTunnelKillResponse: (p) => manager.onKillResponse(p),
      nodeInfo: softwareInfo,
      topology: () => manager.topology(),
    },
  });
}
