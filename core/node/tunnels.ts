// The seam between the node runtime and the tunnel manager (PROTOCOL.md §7.1 step 7, §7.5).
//
// The node runs one TunnelManager. This module holds the interface, the single client of
// `--client` mode (§8.1.3) and a do-nothing base manager for tests. The overlay's manager
// (peer protocol, configuration updates, and client tunnels to random peers unless in
// `--client` mode, §7.5) implements the same interface; in `--client` mode the runtime
// combines it with the single client.

import { TAP_PREFIX } from "../constants.ts";
import type { Address } from "../addressing.ts";
import type { Logger } from "../log.ts";
import type { RouteSpec } from "../../platform/types.ts";
import type { ClientConnectEvent, HookEvent } from "../openvpn/hooks.ts";
import type { NodeCache } from "./cache.ts";
import type { Clock } from "../clock.ts";
import type { Identity } from "./identity.ts";
import type { ServedBook } from "./served.ts";
import type { EffectiveSettings } from "./settings.ts";
import { type ChildInfo, type ManagedProcess, supervise, type Supervised } from "./supervisor.ts";

/** One tunnel, for status. */
export interface TunnelInfo {
  direction: "client" | "server";
  /** Peer prefix in CN form, or null when unknown (`--client` mode). */
  peer: string | null;
  iface: string;
  protocol: string;
  /** Remote endpoint `ip port`, when known. */
  remote: string | null;
  /** When the tunnel was started or the client connected (ms). */
  since: number;
  established: boolean;
}

/** OpenVPN as the tunnel managers see it. */
export interface TunnelOpenVpn {
  /** Arguments of the single client of `--client` mode (core/openvpn/args.ts). */
  singleClientArgs(remotes: readonly Address[], iface: string): string[];
  /** Arguments of one client tunnel to one address of a peer. */
  clientArgs(iface: string, remote: Address, peerCn: string): string[];
  /** Starts `openvpn <args>`; `name` labels it in logs (its tap). */
  start(name: string, args: readonly string[]): Promise<ManagedProcess>;
}

/** What a tunnel manager is given. */
export interface TunnelContext {
  identity: Identity;
  settings: EffectiveSettings;
  cache: NodeCache;
  openvpn: TunnelOpenVpn;
  /** Clients of our servers: the node keeps this book from the hooks; managers read it. */
  served: ServedBook;
  clock: Clock;
  log: Logger;
  /** Creates a persistent tap (journaled: removed at teardown). */
  createTap(name: string): Promise<void>;
  /** Adds a route (journaled: removed at teardown); false when it was already there. */
  addRoute(r: RouteSpec): Promise<boolean>;
  /** Removes a route added with {@link addRoute}. */
  removeRoute(r: RouteSpec): Promise<void>;
  /** Tells babeld about a tap added at run time. */
  addBabelInterface(name: string): Promise<void>;
  /** Asks the node to restart (e.g. new parameters that need it). */
  requestRestart(reason: string): void;
}

/** The tunnel manager seam (§7.5): the node drives it, status reads it. */
export interface TunnelManager {
  /** Babel interfaces that must exist before babeld starts (declared `type tunnel`). */
  readonly interfaces: readonly string[];
  /** Creates those interfaces (before babeld starts). */
  prepare(): Promise<void>;
  /** Starts the manager's tunnels (after babeld runs). */
  start(): Promise<void>;
  /**
   * A client connects to one of our servers: return a refusal reason, or null to let the
   * node accept it (the node has already checked the CRL).
   */
  onClientConnect(ev: ClientConnectEvent): string | null;
  /** Any hook event (the node has already handled its own part). */
  onHook(ev: HookEvent): void;
  /** The manager's client tunnels. */
  tunnels(): TunnelInfo[];
  /** The manager's supervised processes. */
  children(): ChildInfo[];
  /** Stops every tunnel of the manager. */
  stop(): Promise<void>;
}

/** Creates the manager of a node. */
export type TunnelManagerFactory = (ctx: TunnelContext) => TunnelManager;

/**
 * Two managers as one: `first` decides on connecting clients (the second is asked only when
 * the first accepts); both get every hook event, start in order and stop in reverse order.
 * `--client` mode runs its single client with the manager that answers the peer protocol.
 */
export function combinedTunnels(first: TunnelManager, second: TunnelManager): TunnelManager {
  return {
    interfaces: [...first.interfaces, ...second.interfaces],
    async prepare() {
      await first.prepare();
      await second.prepare();
    },
    async start() {
      await first.start();
      await second.start();
    },
    onClientConnect: (ev) => first.onClientConnect(ev) ?? second.onClientConnect(ev),
    onHook(ev) {
      first.onHook(ev);
      second.onHook(ev);
    },
    tunnels: () => [...first.tunnels(), ...second.tunnels()],
    children: () => [...first.children(), ...second.children()],
    async stop() {
      const results = await Promise.allSettled([second.stop(), first.stop()]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    },
  };
}

/**
 * A manager that opens no client tunnel and has no peer protocol (tests; the real node's
 * manager is the overlay, core/node/overlay.ts, in every mode).
 */
export function baseTunnels(): TunnelManager {
  return {
    interfaces: [],
    prepare: () => Promise.resolve(),
    start: () => Promise.resolve(),
    onClientConnect: () => null,
    onHook: () => {},
    tunnels: () => [],
    children: () => [],
    stop: () => Promise.resolve(),
  };
}

/**
 * `--client HOST,PORT,PROTO[;…]` mode (§8.1.3): one OpenVPN client on `re6stnet` with every
 * address as `--remote`, `--ping-restart`, supervised.
 */
export function clientModeTunnels(ctx: TunnelContext, remotes: readonly Address[]): TunnelManager {
  const iface = TAP_PREFIX;
  const args = ctx.openvpn.singleClientArgs(remotes, iface);
  let child: Supervised | null = null;
  let since = ctx.clock.now();
  let up = false;
  const describe = remotes.map((r) => `${r.ip} ${r.port} ${r.proto}`).join(", ");
  return {
    interfaces: [iface],
    async prepare() {
      await ctx.createTap(iface);
    },
    async start() {
      ctx.log.info(`--client mode: connecting ${iface} to ${describe}`);
      child = supervise({
        name: `openvpn ${iface}`,
        start: () => ctx.openvpn.start(iface, args),
        clock: ctx.clock,
        log: ctx.log,
        onStarted: () => {
          since = ctx.clock.now();
          up = false;
        },
      });
      await child.start();
    },
    onClientConnect: () => "this node runs in --client mode",
    onHook(ev) {
      if (ev.dev === iface && ev.type === "up") up = true;
    },
    tunnels: () =>
      child
        ? [{
          direction: "client",
          peer: null,
          iface,
          protocol: remotes[0].proto,
          remote: describe,
          since,
          established: up,
        }]
        : [],
    children: () => (child ? [child.info()] : []),
    async stop() {
      await child?.stop();
    },
  };
}
