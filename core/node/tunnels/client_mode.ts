// `--client HOST,PORT,PROTO[;…]` mode (PROTOCOL.md §8.1.3): one supervised OpenVPN client on
// the tap `re6stnet` with every address as `--remote` and `--ping-restart`. The tunnel manager
// still answers the peer protocol and follows the network configuration, but opens nothing.

import type { Address } from "../../addressing.ts";
import type { Clock } from "../../clock.ts";
import { TAP_PREFIX } from "../../constants.ts";
import type { Logger } from "../../log.ts";
import type { ChildStatus, TunnelStatus } from "../../status/document.ts";
import { type ManagedProcess, supervise, type Supervised } from "../supervisor.ts";

/** The single client of `--client` mode. */
export interface ClientMode {
  /** Its tap, made before babeld starts (declared `type tunnel`). */
  readonly iface: string;
  start(): Promise<void>;
  /** The tap came up (OpenVPN's `up` hook). */
  up(): void;
  status(): TunnelStatus[];
  children(): ChildStatus[];
  stop(): Promise<void>;
}

/** The `--client` mode client to `remotes`; `start` runs one OpenVPN process on its tap. */
export function clientMode(o: {
  remotes: readonly Address[];
  start(iface: string): Promise<ManagedProcess>;
  clock: Clock;
  log: Logger;
}): ClientMode {
  const iface = TAP_PREFIX;
  let child: Supervised | null = null;
  let since = o.clock.now();
  let up = false;
  const describe = o.remotes.map((r) => `${r.ip} ${r.port} ${r.proto}`).join(", ");
  return {
    iface,
    async start() {
      o.log.info(`--client mode: connecting ${iface} to ${describe}`);
      child = supervise({
        name: `openvpn ${iface}`,
        start: () => o.start(iface),
        clock: o.clock,
        log: o.log,
        onStarted: () => {
          since = o.clock.now();
          up = false;
        },
      });
      await child.start();
    },
    up() {
      up = true;
    },
    status: () =>
      child
        ? [{
          direction: "client",
          peer: "",
          interface: iface,
          protocol: o.remotes[0].proto,
          remote: describe,
          since: new Date(since).toISOString(),
          established: up,
          retiring: false,
          babelCost: null,
        }]
        : [],
    children: () => (child ? [child.info()] : []),
    async stop() {
      await child?.stop();
    },
  };
}
