// Which nodes the registry's own node can route to, read from its babeld (PROTOCOL.md §5.8):
// the candidates of getBootstrapPeer and the targets of `versions`.

import { describeError } from "../errors.ts";
import type { Bits } from "../addressing.ts";
import { type BabelClient, type BabelConnector, createBabelClient } from "../babel/local.ts";
import { deriveModel } from "../babel/model.ts";
import { REGISTRY_DUMP_TIMEOUT_S } from "../constants.ts";
import type { Logger } from "../log.ts";
import type { RoutingView } from "./relay.ts";

/** A RoutingView over the local babeld; close() disconnects. */
export interface BabelRoutingView extends RoutingView {
  close(): Promise<void>;
}

/**
 * Reachable prefixes from babeld's routing table: a dump (5 s deadline, retried once) while
 * connected; nothing while babeld is not running, so callers answer at once.
 */
export function babelRoutingView(
  connect: BabelConnector,
  network: Bits,
  log: Logger,
  where = "babeld socket",
): BabelRoutingView {
  const client: BabelClient = createBabelClient({ connect, where, log, retryMaxMs: 5000 });
  let problem: string | null = "not connected yet";
  client.subscribe((e) => {
    if (e.type === "connected") problem = null;
    if (e.type === "disconnected") problem = e.reason;
  });
  return {
    health: () => ({
      source: where,
      reachable: client.connected,
      problem: client.connected ? null : problem,
    }),
    async reachablePrefixes() {
      if (!client.connected) return [];
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const snapshot = await client.dump(REGISTRY_DUMP_TIMEOUT_S * 1000);
          return [...deriveModel(snapshot, network).knownNodes];
        } catch (e) {
          log.warn(
            `Babel dump from ${where} failed${attempt ? "" : ", retrying"}: ${describeError(e)}`,
          );
        }
      }
      return [];
    },
    close: () => client.close(),
  };
}
