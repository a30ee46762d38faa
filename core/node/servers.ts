// The node's OpenVPN side (PROTOCOL.md §7.1 step 9, §8.1): the arguments every OpenVPN
// process shares, and the servers, one per protocol, each supervised.

import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { type CommonArgs, serverArgs } from "../openvpn/args.ts";
import type { NodeOptions } from "../options/node.ts";
import type { EffectiveSettings } from "./settings.ts";
import { type ManagedProcess, supervise, type Supervised } from "./supervisor.ts";

/** The OpenVPN arguments shared by the node's servers and clients. */
export function commonOpenVpnArgs(
  o: NodeOptions,
  s: EffectiveSettings,
  hook: string,
  path: string,
): CommonArgs {
  return {
    hook,
    path,
    encrypt: s.encrypt,
    hello: s.helloS,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    extra: o.openvpnArgs,
    ipv4: s.ipv4 ? { address: s.ipv4.address, netmask: s.ipv4.netmask } : undefined,
    logDir: o.ovpnlog ? o.log : undefined,
  };
}

/** Whether the node runs its servers (some configured, max_clients above 0). */
export function runsServers(s: EffectiveSettings): boolean {
  return s.servers.length > 0 && s.maxClients >= 1;
}

/** What starting the servers needs. */
export interface ServersContext {
  settings: EffectiveSettings;
  common: CommonArgs;
  /** DH parameters file. */
  dh: string;
  /** Starts one OpenVPN process on a tap. */
  start(iface: string, args: readonly string[]): Promise<ManagedProcess>;
  /** A server exited (its clients are gone). */
  onExit(iface: string): void;
  clock: Clock;
  log: Logger;
  /** Checked between servers: throws when the node is asked to stop. */
  checkStop(): void;
}

/**
 * Starts one supervised server per protocol, in order; each is added to `into` as soon as
 * it is supervised, so that a stop during start-up stops it.
 */
export async function startServers(c: ServersContext, into: Supervised[]): Promise<void> {
  const s = c.settings;
  for (const srv of s.servers) {
    const args = serverArgs(c.common, {
      port: srv.port,
      proto: srv.proto,
      dh: c.dh,
      maxClients: s.maxClients,
      iface: srv.iface,
    });
    const sup = supervise({
      name: `openvpn ${srv.iface}`,
      start: () => c.start(srv.iface, args),
      clock: c.clock,
      log: c.log,
      onExit: () => c.onExit(srv.iface),
    });
    into.push(sup);
    await sup.start();
    c.log.info(`OpenVPN server on ${srv.proto} port ${srv.port} (${srv.iface})`);
    c.checkStop();
  }
}
