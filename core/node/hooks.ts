// The node's side of the OpenVPN hooks (PROTOCOL.md §8.1.4, §7.5 "Server side"): who may
// connect to our servers, the book of served clients, and the hand-over to the tunnel manager.

import type { Logger } from "../log.ts";
import type { ConnectAnswer, HookEvent } from "../openvpn/hooks.ts";
import type { Identity } from "./identity.ts";
import type { EffectiveSettings } from "./settings.ts";
import { ServedBook } from "./served.ts";
import type { ServedClient } from "./status.ts";
import type { TunnelManager } from "./tunnels.ts";

/** What the hook handler reads from the node (null while start-up has not got there). */
export interface HookView {
  identity: Identity | null;
  settings: EffectiveSettings | null;
  tunnels: TunnelManager | null;
}

/** Handles hook events and keeps the book of clients connected to our servers. */
export class ServedClients {
  constructor(
    readonly log: Logger,
    readonly now: () => number,
    /** The one record of served clients (the tunnel manager reads it too). */
    readonly book: ServedBook = new ServedBook(),
  ) {}

  /** Clients currently connected to one of our servers. */
  list(): ServedClient[] {
    return this.book.list();
  }

  /**
   * The OpenVPN server of tap `iface` exited: its clients are gone (OpenVPN ran no
   * client-disconnect for them). Each is forgotten and reported to the tunnel manager as
   * disconnected. Returns how many there were.
   */
  serverExited(iface: string, tunnels: TunnelManager | null): number {
    const gone = this.book.dropInterface(iface);
    if (gone.length) {
      this.log.info(
        `OpenVPN server ${iface} exited: forgetting its ${gone.length} client(s) ` +
          gone.map((e) => e.cn).join(", "),
      );
    }
    for (const e of gone) {
      tunnels?.onHook({
        type: "client-disconnect",
        dev: e.iface,
        commonName: e.cn,
        serial: e.serial,
        trustedIp: e.trustedIp,
        trustedPort: e.trustedPort,
        time: Math.floor(this.now() / 1000),
      });
    }
    return gone.length;
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
      this.book.connect(ev, this.now());
      log.info(`Client ${ev.commonName} connected to ${ev.dev} from ${ev.trustedIp}`);
      tunnels.onHook(ev);
      return { accept: true };
    }
    if (ev.type === "client-disconnect") {
      this.book.disconnect(ev.dev, ev.commonName);
      log.info(`Client ${ev.commonName} disconnected from ${ev.dev}`);
    } else if (ev.type === "route-up") {
      log.info(`Tunnel ${ev.dev} to ${ev.commonName} is up`);
    } else {
      log.debug(`${ev.dev} is up (mtu ${ev.mtu})`);
    }
    tunnels?.onHook(ev);
  }
}
