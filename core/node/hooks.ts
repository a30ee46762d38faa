// The node's side of the OpenVPN hooks (PROTOCOL.md §8.1.4, §7.5 "Server side"): who may
// connect to our servers, the book of served clients, and the hand-over of every event to the
// tunnel manager and to the `--client` mode client.

import { prefixFromCn } from "../addressing.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { ConnectAnswer, HookEvent } from "../openvpn/hooks.ts";
import { describeError } from "../errors.ts";
import type { ClientMode } from "./tunnels/client_mode.ts";
import type { TunnelManager } from "./tunnels/manager.ts";
import { type AdmissionFacts, refusal, type ServedBook } from "./tunnels/served.ts";

/** What hook events act on; fields are null while start-up has not made them. */
export interface HookTargets {
  admission(): AdmissionFacts;
  served: ServedBook;
  /** Protocol of the server on tap `iface` (`tcp`, `udp6`…). */
  serverProtocol(iface: string): string;
  manager: TunnelManager | null;
  clientMode: ClientMode | null;
  clock: Clock;
  log: Logger;
}

/**
 * One hook event: a connecting client is admitted (refusal() decides) and recorded, or
 * refused; every event then reaches the tunnel manager.
 */
export function handleHook(ev: HookEvent, t: HookTargets): ConnectAnswer | void {
  const log = t.log;
  switch (ev.type) {
    case "client-connect": {
      const no = refusal(ev, t.admission());
      if (no) {
        log.warn(`Refusing client ${ev.commonName} on ${ev.dev} from ${ev.trustedIp}: ${no}`);
        return { accept: false, reason: no };
      }
      t.served.connect(ev, t.clock.now(), t.serverProtocol(ev.dev));
      log.info(`Client ${ev.commonName} connected to ${ev.dev} from ${ev.trustedIp}`);
      t.manager?.clientConnected(prefixFromCn(ev.commonName));
      return { accept: true };
    }
    case "client-disconnect":
      t.served.disconnect(ev.dev, ev.commonName);
      log.info(`Client ${ev.commonName} disconnected from ${ev.dev}`);
      t.manager?.clientDisconnected(ev);
      return;
    case "route-up":
      log.info(`Tunnel ${ev.dev} to ${ev.commonName} is up`);
      t.manager?.routeUp(ev).catch((e) =>
        log.error(`Cannot handle route-up of ${ev.dev} (${ev.commonName}): ${describeError(e)}`)
      );
      return;
    case "up":
      log.debug(`${ev.dev} is up (mtu ${ev.mtu})`);
      if (t.clientMode?.iface === ev.dev) t.clientMode.up();
      return;
  }
}

/**
 * The OpenVPN server of tap `iface` exited: its clients are gone (OpenVPN ran no
 * client-disconnect for them). Each is forgotten and reported to the tunnel manager as
 * disconnected. Returns how many there were.
 */
export function serverExited(iface: string, t: HookTargets): number {
  const gone = t.served.dropInterface(iface);
  if (gone.length) {
    t.log.info(
      `OpenVPN server ${iface} exited: forgetting its ${gone.length} client(s) ` +
        gone.map((e) => e.cn).join(", "),
    );
  }
  for (const e of gone) {
    t.manager?.clientDisconnected({
      type: "client-disconnect",
      dev: e.iface,
      commonName: e.cn,
      serial: e.serial,
      trustedIp: e.trustedIp,
      trustedPort: e.trustedPort,
      time: Math.floor(t.clock.now() / 1000),
    });
  }
  return gone.length;
}
