// The node's side of the OpenVPN hooks (PROTOCOL.md §8.1.4, §7.5 "Server side"): who may
// connect to our servers, the book of served clients, and the hand-over to the tunnel manager.

import type { Logger } from "../log.ts";
import type { ConnectAnswer, HookEvent } from "../openvpn/hooks.ts";
import type { Identity } from "./identity.ts";
import type { EffectiveSettings } from "./settings.ts";
import type { ServedClient } from "./status.ts";
import type { TunnelManager } from "./tunnels.ts";

/** What the hook handler reads from the node (null while start-up has not got there). */
export interface HookView {
  identity: Identity | null;
  settings: EffectiveSettings | null;
  tunnels: TunnelManager | null;
}

/** Handles hook events and keeps the clients connected to our servers. */
export class ServedClients {
  readonly #served = new Map<string, ServedClient>();
  constructor(readonly log: Logger, readonly now: () => number) {}

  /** Clients currently connected to one of our servers. */
  list(): ServedClient[] {
    return [...this.#served.values()];
  }

  /**
   * One hook event: client-connect is refused for our own certificate or a revoked serial
   * (or when the tunnel manager says so), otherwise accepted and recorded.
   */
  handle(ev: HookEvent, view: HookView): ConnectAnswer | void {
    const log = this.log;
    const { identity: id, settings: s, tunnels } = view;
    if (ev.type === "client-connect") {
      const refuse = (reason: string): ConnectAnswer => {
        log.warn(`Refusing client ${ev.commonName} on ${ev.dev} from ${ev.trustedIp}: ${reason}`);
        return { accept: false, reason };
      };
      if (!s || !id || !tunnels) return refuse("the node is not ready");
      if (ev.commonName === id.cn) return refuse("it presents our own certificate");
      if (s.crl.has(ev.serial)) return refuse(`certificate serial ${ev.serial} is revoked`);
      const no = tunnels.onClientConnect(ev);
      if (no) return refuse(no);
      this.#served.set(`${ev.dev} ${ev.commonName}`, {
        peer: ev.commonName,
        iface: ev.dev,
        serial: ev.serial.toString(),
        remote: `${ev.trustedIp} ${ev.trustedPort}`,
        since: this.now(),
      });
      log.info(`Client ${ev.commonName} connected to ${ev.dev} from ${ev.trustedIp}`);
      tunnels.onHook(ev);
      return { accept: true };
    }
    if (ev.type === "client-disconnect") {
      this.#served.delete(`${ev.dev} ${ev.commonName}`);
      log.info(`Client ${ev.commonName} disconnected from ${ev.dev}`);
    } else if (ev.type === "route-up") {
      log.info(`Tunnel ${ev.dev} to ${ev.commonName} is up`);
    } else {
      log.debug(`${ev.dev} is up (mtu ${ev.mtu})`);
    }
    tunnels?.onHook(ev);
  }
}
