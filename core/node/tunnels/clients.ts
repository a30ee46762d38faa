// Client tunnels (PROTOCOL.md §7.5, §8.1.3, §8.1.5, §8.4.4): tap interfaces `re6stnet1…` taken
// from a free list, announced to babeld at run time, one OpenVPN client per tunnel trying the
// peer's addresses in order, `--remote-gateway` routes. What they need of the kernel (taps,
// gateway routes, drained taps) is published as one part of the node's desired state.
//
// A tap stays a Babel interface once announced and is never flushed from babeld nor deleted
// while babeld runs: with an HMAC key, babeld 1.12.1 loops forever ("add_hmac: no link-local
// address") when an interface is flushed or goes down while a neighbour on it still has
// unicast messages buffered. A tunnel is drained instead by dropping Babel packets on its tap
// (retirement.ts); the node deletes the taps after babeld has stopped.

import type { Address, Bits } from "../../addressing.ts";
import type { Clock } from "../../clock.ts";
import { TAP_PREFIX } from "../../constants.ts";
import { describeError } from "../../errors.ts";
import type { KernelState, RouteSpec } from "../../kernel.ts";
import type { Logger } from "../../log.ts";
import { remoteGateways } from "../../openvpn/gateway.ts";

/** An OpenVPN process as the machine starts it (core/node/supervisor.ts ManagedProcess fits). */
export interface StartedProcess {
  readonly pid: number;
  /** Settles when it has exited. */
  readonly exited: Promise<unknown>;
  /** Stops it; resolves when it has exited. */
  stop(): Promise<unknown>;
}

/** The OpenVPN client process of a tunnel. */
export interface ClientProcess extends StartedProcess {
  /** Unix time (ms) when it was started. */
  readonly startedAt: number;
  /** True once it has exited. */
  readonly done: boolean;
}

/** What client tunnels need from the machine. */
export interface ClientHost {
  /** Starts an OpenVPN client on `iface` to one address of the peer whose CN is `peerCn`. */
  startClient(iface: string, remote: Address, peerCn: string): Promise<StartedProcess>;
  /** Makes the tunnels' part of the node's kernel state (taps, routes, drained taps) true. */
  kernel(state: Partial<KernelState>): Promise<void>;
}

/** What client tunnels need from babeld (core/babel/local.ts BabelClient fits). */
export interface BabelInterfaces {
  addInterface(name: string, params: string): Promise<void>;
}

/** One client tunnel: the one record of an outgoing tunnel. */
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
  host: ClientHost;
  babel: BabelInterfaces;
  log: Logger;
  clock: Clock;
  /** `--remote-gateway` values. */
  remoteGateways: readonly string[];
  /** Babel parameters of a run-time tunnel interface. */
  babelParams(): string;
  /** Called when the process of a tunnel exits (the tunnel is still listed). */
  onExit(t: ClientTunnel): void;
}

/** The set of client tunnels, by peer prefix. */
export class ClientTunnels {
  readonly #o: ClientTunnelsOptions;
  readonly #byPrefix = new Map<Bits, ClientTunnel>();
  /** Taps made for tunnels: kept (and reused) until the node stops. */
  readonly #taps = new Set<string>();
  readonly #used = new Set<string>();
  /** Taps babeld knows as interfaces (announced at run time). */
  readonly #announced = new Set<string>();
  readonly #gateways;
  /** The `--remote-gateway` routes held, by destination. */
  readonly #gatewayRoutes = new Map<string, RouteSpec>();

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

  /** The tunnels' part of the kernel state. */
  kernelState(): Partial<KernelState> {
    return {
      taps: [...this.#taps],
      routes: [...this.#gatewayRoutes.values()],
      drained: this.list().filter((t) => t.draining).map((t) => t.iface),
    };
  }

  #publish(): Promise<void> {
    return this.#o.host.kernel(this.kernelState());
  }

  /** Opens a tunnel to `prefix` on a free tap, trying `addresses[0]` first (non-empty). */
  async open(prefix: Bits, cn: string, addresses: Address[]): Promise<ClientTunnel> {
    if (addresses.length === 0) throw new Error(`No address to reach ${cn}`);
    if (this.#byPrefix.has(prefix)) throw new Error(`A tunnel to ${cn} exists already`);
    const iface = this.#allocate();
    try {
      if (!this.#taps.has(iface)) {
        this.#taps.add(iface);
        await this.#publish().catch((e) => {
          this.#taps.delete(iface);
          throw e;
        });
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
    t.draining = true;
    try {
      await this.#publish();
    } catch (e) {
      t.draining = false;
      throw e;
    }
  }

  /** Closes a tunnel: OpenVPN stops, the tap goes back to the free list (still announced). */
  async close(prefix: Bits, reason: string): Promise<void> {
    const t = this.#byPrefix.get(prefix);
    if (!t) return;
    this.#byPrefix.delete(prefix);
    this.#o.log.info(`Closing tunnel to ${t.cn} on ${t.iface}: ${reason}`);
    if (!t.process.done) await t.process.stop();
    const changed = this.#dropGateway(t) || t.draining;
    this.#used.delete(t.iface);
    if (changed) {
      await this.#publish().catch((e) =>
        this.#o.log.warn(
          `Cannot update the kernel after closing the tunnel to ${t.cn} (${t.iface}): ` +
            `${describeError(e)}; the node's teardown tries again`,
        )
      );
    }
  }

  /** Closes every tunnel and gives back its routes (at exit; the taps go after babeld). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#byPrefix.keys()].map((p) => this.close(p, "node stopping")));
    this.#gateways.removeAll();
    this.#gatewayRoutes.clear();
    await this.#publish().catch((e) =>
      this.#o.log.warn(`Cannot remove the tunnels' routes: ${describeError(e)}`)
    );
  }

  #allocate(): string {
    for (let i = 1;; i++) {
      const name = `${TAP_PREFIX}${i}`;
      if (!this.#used.has(name)) {
        this.#used.add(name);
        return name;
      }
    }
  }

  async #start(t: ClientTunnel, index: number): Promise<void> {
    const dropped = this.#dropGateway(t);
    const remote = t.addresses[index];
    t.index = index;
    t.established = false;
    delete t.serial;
    const route = this.#gateways.add(remote.ip);
    if (this.#o.remoteGateways.length && IPV4_RE.test(remote.ip)) t.gatewayIp = remote.ip;
    if (route) this.#gatewayRoutes.set(route.dst, route);
    if (route || dropped) {
      await this.#publish().catch((e) =>
        this.#o.log.warn(
          `Cannot route ${remote.ip} through the remote gateway ${route?.via}: ` +
            `${describeError(e)}; the tunnel follows the normal routes`,
        )
      );
    }
    this.#o.log.info(
      `Starting tunnel to ${t.cn} on ${t.iface} via ${remote.ip} ${remote.port} ${remote.proto}`,
    );
    t.process = NOT_STARTED;
    const startedAt = this.#o.clock.now();
    const started = await this.#o.host.startClient(t.iface, remote, t.cn);
    let done = false;
    const process: ClientProcess = {
      pid: started.pid,
      startedAt,
      exited: started.exited.finally(() => done = true),
      get done() {
        return done;
      },
      stop: () => started.stop(),
    };
    t.process = process;
    process.exited.then(() => {
      if (this.#byPrefix.get(t.prefix) === t && t.process === process) this.#o.onExit(t);
    }, () => {});
  }

  /** Gives back the tunnel's `--remote-gateway` route; true when a route was dropped. */
  #dropGateway(t: ClientTunnel): boolean {
    if (t.gatewayIp === undefined) return false;
    const route = this.#gateways.remove(t.gatewayIp);
    delete t.gatewayIp;
    return route !== null && this.#gatewayRoutes.delete(route.dst);
  }
}

/** Placeholder process of a tunnel being set up. */
const NOT_STARTED: ClientProcess = {
  pid: 0,
  startedAt: 0,
  exited: Promise.resolve(),
  done: true,
  stop: () => Promise.resolve(),
};

const IPV4_RE = /^\d+\.\d+\.\d+\.\d+$/;
