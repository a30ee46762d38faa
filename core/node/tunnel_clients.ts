// Client tunnels of the tunnel manager (PROTOCOL.md §7.5, §8.1.3, §8.1.5, §8.4.4): tap
// interfaces `re6stnet1…` taken from a free list, announced to babeld at run time, one
// OpenVPN client per tunnel trying the peer's addresses in order, `--remote-gateway` routes.
//
// A tap stays a Babel interface once announced and is never flushed from babeld: with an HMAC
// key, babeld 1.12.1 loops forever ("add_hmac: no link-local address") when an interface is
// flushed or goes down while a neighbour on it still has unicast messages buffered. A tunnel
// is drained instead by dropping Babel packets on its tap (both directions, §8.4.5 adapted):
// each side loses the other as a neighbour after two hellos and routes around the tunnel,
// which still carries the traffic in flight; then OpenVPN stops.

import { describeError } from "../errors.ts";
import { TAP_PREFIX } from "../constants.ts";
import type { Address, Bits } from "../addressing.ts";
import type { Logger } from "../log.ts";
import { remoteGateways } from "../openvpn/gateway.ts";
import type { RouteSpec } from "../../platform/types.ts";
import type { Clock } from "../clock.ts";

/** A running OpenVPN client process (platform/openvpn.ts OpenVpnProcess fits). */
export interface ClientProcess {
  /** Unix time (ms) when it was started. */
  readonly startedAt: number;
  /** Settles when it has exited. */
  readonly exited: Promise<unknown>;
  /** True once it has exited. */
  readonly done: boolean;
  /** Stops it; resolves when it has exited. */
  stop(): Promise<unknown>;
}

/** What client tunnels need from the machine. */
export interface TunnelHost {
  /** Creates the persistent tap `iface` (`openvpn --mktun`). */
  createTap(iface: string): Promise<void>;
  /** Deletes the tap `iface` (`openvpn --rmtun`). */
  deleteTap(iface: string): Promise<void>;
  /** Starts an OpenVPN client on `iface` to one address of the peer whose CN is `peerCn`. */
  startClient(iface: string, remote: Address, peerCn: string): Promise<ClientProcess>;
  /**
   * Adds a host route of `--remote-gateway` (journaled: removed at teardown even after a
   * kill); false when the route was already there (then it is not ours to remove).
   */
  addRoute(r: RouteSpec): Promise<boolean>;
  /** Removes a route added by {@link addRoute}. */
  removeRoute(r: RouteSpec): Promise<void>;
  /** Drops Babel packets (UDP 6696) in and out of `iface` (a tunnel being retired). */
  blockBabel(iface: string): Promise<void>;
  /** Lets Babel packets through `iface` again. */
  unblockBabel(iface: string): Promise<void>;
}

/** What client tunnels need from babeld (core/babel/local.ts BabelClient fits). */
export interface BabelInterfaces {
  addInterface(name: string, params: string): Promise<void>;
}

/** One client tunnel. */
export interface ClientTunnel {
  prefix: Bits;
  /** CN form of the peer, e.g. `6/16`. */
  cn: string;
  iface: string;
  /** Usable addresses of the peer, in the order they are tried. */
  addresses: Address[];
  /** Index of the address the current process uses. */
  index: number;
  process: ClientProcess;
  /** route-up received for the current process. */
  established: boolean;
  /** Serial of the server's certificate, from route-up. */
  serial?: bigint;
  /** When the tunnel was opened / came up (ms). */
  openedAt: number;
  establishedAt?: number;
  /** IPv4 remote holding a `--remote-gateway` route. */
  gatewayIp?: string;
  /** Babel packets are dropped on its tap (retirement in progress). */
  draining?: boolean;
}

/** Options of {@link ClientTunnels}. */
export interface ClientTunnelsOptions {
  host: TunnelHost;
  babel: BabelInterfaces;
  log: Logger;
  clock: Clock;
  /** `--remote-gateway` values. */
  remoteGateways: readonly string[];
  /** Babel parameters of a run-time tunnel interface. */
  babelParams(): string;
  /** Called when the process of a tunnel exits (the tunnel is still listed). */
  onExit(t: ClientTunnel): void;
  /** Tap interface name prefix (default "re6stnet"). */
  ifacePrefix?: string;
}

/** The set of client tunnels, by peer prefix. */
export class ClientTunnels {
  readonly #o: ClientTunnelsOptions;
  readonly #byPrefix = new Map<Bits, ClientTunnel>();
  /** Taps we created and have not deleted. */
  readonly #created = new Set<string>();
  readonly #used = new Set<string>();
  /** Taps babeld knows as interfaces (announced at run time). */
  readonly #announced = new Set<string>();
  readonly #gateways;
  /** Destinations of the `--remote-gateway` routes we added (not those already there). */
  readonly #gatewayRoutes = new Set<string>();

  constructor(o: ClientTunnelsOptions) {
    this.#o = o;
    this.#gateways = remoteGateways(o.remoteGateways);
  }

  get size(): number {
    return this.#byPrefix.size;
  }

  get(prefix: Bits): ClientTunnel | undefined {
    return this.#byPrefix.get(prefix);
  }

  has(prefix: Bits): boolean {
    return this.#byPrefix.has(prefix);
  }

  /** Tunnels in the order they were opened. */
  list(): ClientTunnel[] {
    return [...this.#byPrefix.values()];
  }

  /** The tunnel using tap `iface`. */
  byIface(iface: string): ClientTunnel | undefined {
    for (const t of this.#byPrefix.values()) if (t.iface === iface) return t;
    return undefined;
  }

  /** Opens a tunnel to `prefix` on a free tap, trying `addresses[0]` first (non-empty). */
  async open(prefix: Bits, cn: string, addresses: Address[]): Promise<ClientTunnel> {
    if (addresses.length === 0) throw new Error(`No address to reach ${cn}`);
    if (this.#byPrefix.has(prefix)) throw new Error(`A tunnel to ${cn} exists already`);
    const iface = this.#allocate();
    try {
      if (!this.#created.has(iface)) {
        await this.#o.host.createTap(iface);
        this.#created.add(iface);
      }
      if (!this.#announced.has(iface)) {
        await this.#o.babel.addInterface(iface, this.#o.babelParams());
        this.#announced.add(iface);
      }
    } catch (e) {
      this.#used.delete(iface);
      throw new Error(`Cannot prepare ${iface} for a tunnel to ${cn}`, { cause: e });
    }
    const t: ClientTunnel = {
      prefix,
      cn,
      iface,
      addresses,
      index: 0,
      process: NOT_STARTED,
      established: false,
      openedAt: this.#o.clock.now(),
    };
    this.#byPrefix.set(prefix, t);
    try {
      await this.#start(t, 0);
    } catch (e) {
      await this.close(prefix, "OpenVPN did not start");
      throw e;
    }
    return t;
  }

  /** Starts the next address of a tunnel whose process died before route-up; false if none. */
  async next(t: ClientTunnel): Promise<boolean> {
    if (t.index + 1 >= t.addresses.length) return false;
    try {
      await this.#start(t, t.index + 1);
    } catch (e) {
      this.#o.log.warn(`Cannot start OpenVPN for ${t.cn}: ${describeError(e)}`);
    }
    return true;
  }

  /** Drops Babel on the tunnel's tap so that both ends route around it (§8.4.5 adapted). */
  async drain(t: ClientTunnel): Promise<void> {
    await this.#o.host.blockBabel(t.iface);
    t.draining = true;
  }

  /** Closes a tunnel: OpenVPN stops, the tap goes back to the free list (still announced). */
  async close(prefix: Bits, reason: string): Promise<void> {
    const t = this.#byPrefix.get(prefix);
    if (!t) return;
    this.#byPrefix.delete(prefix);
    this.#o.log.info(`Closing tunnel to ${t.cn} on ${t.iface}: ${reason}`);
    if (!t.process.done) await t.process.stop();
    if (t.draining) {
      await this.#o.host.unblockBabel(t.iface).catch((e) =>
        this.#o.log.warn(`Cannot let Babel through ${t.iface} again: ${describeError(e)}`)
      );
    }
    await this.#dropGateway(t);
    this.#used.delete(t.iface);
  }

  /** Closes every tunnel, then deletes every tap this object created (at exit). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#byPrefix.keys()].map((p) => this.close(p, "node stopping")));
    for (const r of this.#gateways.removeAll()) await this.#removeGatewayRoute(r);
    for (const iface of [...this.#created]) {
      try {
        await this.#o.host.deleteTap(iface);
        this.#created.delete(iface);
      } catch (e) {
        this.#o.log.warn(`Cannot delete ${iface}: ${describeError(e)}`);
      }
    }
  }

  #allocate(): string {
    const base = this.#o.ifacePrefix ?? TAP_PREFIX;
    for (let i = 1;; i++) {
      const name = `${base}${i}`;
      if (!this.#used.has(name)) {
        this.#used.add(name);
        return name;
      }
    }
  }

  async #start(t: ClientTunnel, index: number): Promise<void> {
    await this.#dropGateway(t);
    const remote = t.addresses[index];
    t.index = index;
    t.established = false;
    delete t.serial;
    const route = this.#gateways.add(remote.ip);
    if (this.#o.remoteGateways.length && IPV4_RE.test(remote.ip)) t.gatewayIp = remote.ip;
    if (route) {
      try {
        if (await this.#o.host.addRoute(route)) this.#gatewayRoutes.add(route.dst);
      } catch (e) {
        this.#o.log.warn(
          `Cannot route ${remote.ip} through the remote gateway ${route.via}: ${
            describeError(e)
          }; ` +
            "the tunnel follows the normal routes",
        );
      }
    }
    this.#o.log.info(
      `Starting tunnel to ${t.cn} on ${t.iface} via ${remote.ip} ${remote.port} ${remote.proto}`,
    );
    t.process = NOT_STARTED;
    const process = await this.#o.host.startClient(t.iface, remote, t.cn);
    t.process = process;
    process.exited.then(() => {
      if (this.#byPrefix.get(t.prefix) === t && t.process === process) this.#o.onExit(t);
    }, () => {});
  }

  async #dropGateway(t: ClientTunnel): Promise<void> {
    if (t.gatewayIp === undefined) return;
    const route = this.#gateways.remove(t.gatewayIp);
    delete t.gatewayIp;
    if (route) await this.#removeGatewayRoute(route);
  }

  async #removeGatewayRoute(r: RouteSpec): Promise<void> {
    if (!this.#gatewayRoutes.delete(r.dst)) return; // not added by us
    try {
      await this.#o.host.removeRoute(r);
    } catch (e) {
      this.#o.log.warn(
        `Cannot remove the route ${r.dst} via ${r.via}: ${describeError(e)}; ` +
          "the node's teardown tries again",
      );
    }
  }
}

/** Placeholder process of a tunnel being set up. */
const NOT_STARTED: ClientProcess = {
  startedAt: 0,
  exited: Promise.resolve(),
  done: true,
  stop: () => Promise.resolve(),
};

const IPV4_RE = /^\d+\.\d+\.\d+\.\d+$/;
