// The OpenVPN client processes of the simulation: started at once, ended when refused, when
// the other end died, or when the tunnel manager stops them.

import type { StartedProcess } from "../../core/node/tunnels/clients.ts";
import type { ClientConnectEvent, ClientDisconnectEvent } from "../../core/openvpn/hooks.ts";
import { SERVER_DEV } from "./views.ts";

/** An OpenVPN client process of the simulation. */
export class SimProcess implements StartedProcess {
  static #pids = 1;
  readonly pid = SimProcess.#pids++;
  readonly exited: Promise<void>;
  done = false;
  /** The node whose server accepted it, if any. */
  server: number | null = null;
  /** Its tunnel is up (route-up handled) / drained (Babel dropped on its tap). */
  up = false;
  drained = false;
  #resolve!: () => void;
  constructor(
    readonly owner: number,
    readonly iface: string,
    readonly onEnd: (p: SimProcess, stopped: boolean) => void,
  ) {
    this.exited = new Promise((r) => this.#resolve = r);
  }
  /** Ends the process (refused, peer gone, or stopped). */
  end(notify = true, stopped = false): void {
    if (this.done) return;
    this.done = true;
    if (notify) this.onEnd(this, stopped);
    this.#resolve();
  }
  stop(): Promise<void> {
    this.end(true, true);
    return this.exited;
  }
}

/** The hook event a node's server reports when `client` connects or leaves at `nowMs`. */
export function hookEvent(
  type: "client-connect" | "client-disconnect",
  client: { i: number; cn: string; ip: string },
  nowMs: number,
): ClientConnectEvent | ClientDisconnectEvent {
  const e = {
    dev: SERVER_DEV,
    commonName: client.cn,
    serial: BigInt(client.i + 1),
    trustedIp: client.ip,
    trustedPort: 40000,
    time: Math.floor(nowMs / 1000),
  };
  return type === "client-connect" ? { type, ...e } : { type, ...e };
}
