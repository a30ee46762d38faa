// The overlay (issue "Overlay"): what makes a node find its peers by itself. Plugs into the
// node runtime through its TunnelManager seam (./tunnels.ts) and brings: the peer protocol
// on UDP 326 (§6), the own address list (§7.10), the tunnel manager (§7.3, §7.5, §7.6) and
// network configuration updates (§7.7).

import { describeError } from "../errors.ts";
import { type Bits, cnFromPrefix, prefixFromCn } from "../addressing.ts";
import type { BabelClient } from "../babel/local.ts";
import { tunnelParams } from "../babel/config.ts";
import { PROTOCOL_VERSION, runFile } from "../constants.ts";
import type { HookEvent } from "../openvpn/hooks.ts";
import type { NodeOptions } from "../options/node.ts";
import { PeerProtocol } from "../peer/protocol.ts";
import type { BootstrapPeer } from "../registry/client.ts";
import { createOwnAddresses, type OwnAddresses } from "./addresses.ts";
import { drainArgs, drainRuleset, dropTableArgs, undrainArgs } from "./drain_filter.ts";
import { NetconfUpdates, restartReason } from "./netconf_updates.ts";
import { type EffectiveSettings, effectiveSettings } from "./settings.ts";
import type { ChildInfo } from "./supervisor.ts";
import { fetchNetworkConfig, type NodeRegistry } from "./sync.ts";
import type { ClientProcess } from "./tunnel_clients.ts";
import {
  type BabelControl,
  OverlayTunnels,
  type PeerLink,
  type TunnelSettings,
} from "./tunnel_manager.ts";
import type { TunnelContext, TunnelInfo, TunnelManager, TunnelManagerFactory } from "./tunnels.ts";

/** The registry calls of the overlay (core/registry/client.ts RegistryClient fits). */
export interface OverlayRegistry extends NodeRegistry {
  getBootstrapPeer(): Promise<BootstrapPeer | null>;
  getCountry(address: string): Promise<string | null>;
}

/** A bound UDP socket (platform/udp.ts UdpSocket fits). */
export interface PeerSocket {
  send(host: string, port: number, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** The machine-facing parts of the overlay (platform/overlay.ts builds the real ones). */
export interface OverlayParts {
  /**
   * Binds UDP 326 and feeds every datagram to `onDatagram`; `onError` hears of failed
   * receives (the socket keeps receiving) and failed handlers.
   */
  openPeerSocket(
    onDatagram: (host: string, port: number, bytes: Uint8Array) => Promise<void>,
    onError: (error: Error) => void,
  ): PeerSocket;
  /** A babeld local-interface client on `socket` (the overlay's own connection). */
  babelClient(socket: string): BabelClient;
  /** A registry client for this node (its own HMAC session). */
  registry(ctx: TunnelContext): OverlayRegistry;
  /** Runs `nft` with `args` (or a ruleset on standard input); tunnels are drained with it. */
  nft(args: string[], stdin?: string): Promise<void>;
  /** The machine's addresses outside re6st (fallback of the own address list, §7.10). */
  localAddresses(): Promise<string[]>;
  random?: () => number;
}

/** The overlay's factory for the node runtime (`NodeParts.tunnels`). */
export function overlayTunnels(opts: NodeOptions, parts: OverlayParts): TunnelManagerFactory {
  return (ctx) => createOverlay(opts, parts, ctx);
}

/** Builds the overlay of one node life; started by the runtime once babeld runs. */
export function createOverlay(
  opts: NodeOptions,
  parts: OverlayParts,
  ctx: TunnelContext,
): TunnelManager {
  const { identity, cache, clock } = ctx;
  const log = ctx.log.child("overlay");
  let s: EffectiveSettings = ctx.settings;
  const end = new AbortController();
  let babel: BabelClient | null = null;
  let protocol: PeerProtocol | null = null;
  let socket: PeerSocket | null = null;
  let own: OwnAddresses = createOwnAddresses({
    ips: opts.ip,
    servers: s.servers,
    network: identity.network,
    cached: cache.ownAddress(),
    country: opts.country,
    withCountry: s.sameCountry.length > 0,
  });
  const registry = parts.registry(ctx);
  const loops: Promise<void>[] = [];
  const processes = new Map<string, { pid: number; since: number }>();

  // In --client mode the overlay answers the peer protocol and follows the network
  // configuration but opens no client tunnel: the runtime's single client is the only one.
  const opensTunnels = () => s.clientMode === null;
  const settings = (): TunnelSettings => ({
    clientCount: opensTunnels() ? s.clientCount : 0,
    tunnelRefreshS: s.tunnelRefreshS,
    helloS: s.helloS,
    timeoutS: s.timeoutS,
    registryPrefix: s.registryPrefix,
    crl: s.crl,
    disabledProtos: s.disabledProtos,
    sameCountry: s.sameCountry,
  });
  const needBabel = (): BabelClient => {
    if (!babel) throw new Error("babeld is not connected yet");
    return babel;
  };
  const babelControl: BabelControl = {
    dump: () => needBabel().dump(),
    addInterface: (name, params) => needBabel().addInterface(name, params),
  };
  const peers: PeerLink = {
    sendTo: (p, code, payload) => protocol?.sendTo(p, code, payload) ?? false,
    probe: (p) => protocol?.probe(p) ?? false,
  };

  const tunnels = new OverlayTunnels({
    network: identity.network,
    prefix: identity.prefix,
    clock,
    log,
    random: parts.random,
    settings,
    neighbours: opts.neighbour.map(cnToBits).filter((p): p is Bits => p !== null),
    babel: babelControl,
    peers,
    cache,
    host: {
      createTap: (iface) => ctx.createTap(iface),
      deleteTap: () => Promise.resolve(), // the runtime's journal deletes taps at teardown
      async startClient(iface, remote, peerCn): Promise<ClientProcess> {
        const startedAt = clock.now();
        const p = await ctx.openvpn.start(iface, ctx.openvpn.clientArgs(iface, remote, peerCn));
        processes.set(iface, { pid: p.pid, since: startedAt });
        let done = false;
        const exited = p.exited.then((e) => {
          done = true;
          if (processes.get(iface)?.pid === p.pid) processes.delete(iface);
          return e;
        });
        return {
          startedAt,
          exited,
          get done() {
            return done;
          },
          stop: () => p.stop(),
        };
      },
      addRoute: (r) => ctx.addRoute(r),
      removeRoute: (r) => ctx.removeRoute(r),
      blockBabel: (iface) => parts.nft(drainArgs(iface)),
      unblockBabel: (iface) => parts.nft(undrainArgs(iface)),
    },
    bootstrap: () => registry.getBootstrapPeer(),
    addresses: {
      // Delegates, so that `own` can be rebuilt once the machine's addresses are known.
      list: () => own.list(),
      text: () => own.text(),
      learning: (f) => own.learning(f),
      learn: (ip) => own.learn(ip),
      country: (f) => own.country(f),
      setCountry: (f, c) => own.setCountry(f, c),
      firstIps: () => own.firstIps(),
    },
    remoteGateways: opts.remoteGateway,
    served: ctx.served,
    babelParams: () =>
      tunnelParams({
        babelDefault: s.babelDefault,
        hmacSign: s.hmacSign,
        hmacAccept: s.hmacSign ? s.hmacAccept : undefined,
      }),
    onOwnAddressChange: (text) => cache.setOwnAddress(text),
    onModel: (model) => {
      updates.check(tunnels.registryReachable());
      // Gossip also at every dump (§7.7): a neighbour without a session only got a hello0 when
      // the version changed; it gets the version once the session is up.
      protocol?.gossipVersion(model.neighbours.keys());
    },
  });

  const overridden = new Set<string>([
    ...(opts.clientCount !== undefined ? ["client_count"] : []),
    ...(opts.maxClients !== undefined ? ["max_clients"] : []),
  ]);
  const restartLater = (reason: string) => {
    const delayS = 1 + s.delayRestartS;
    log.info(`Will restart in ${delayS} s: ${reason}`);
    void clock.sleep(delayS * 1000, end.signal).then(() => {
      if (!end.signal.aborted) ctx.requestRestart(reason);
    });
  };

  /** A stored configuration change, applied (§7.7). */
  const apply = async (changed: string[]) => {
    let next: EffectiveSettings;
    try {
      next = effectiveSettings(opts, cache.config(), identity, s.sourceRouting);
    } catch (e) {
      ctx.requestRestart(describeError(e));
      return;
    }
    s = next;
    const version = cache.version();
    if (protocol && version) {
      protocol.setVersion(version);
      protocol.gossipVersion(tunnels.neighbourPrefixes());
    }
    if (s.protocol > PROTOCOL_VERSION) {
      log.warn(`The network runs protocol ${s.protocol}: a new version of re6st is available`);
    }
    const revoked = protocol?.dropRevoked((serial) => s.crl.has(serial)) ?? [];
    const closed = await tunnels.dropRevoked(s.crl, revoked);
    if (revoked.length || closed) {
      log.info(`Revoked certificates: forgot ${revoked.length} peers, closed ${closed} tunnels`);
    }
    if (s.crl.has(identity.cert.serial)) {
      ctx.requestRestart("our own certificate was revoked");
      return;
    }
    const reason = restartReason(changed, {
      clientTunnels: opensTunnels(),
      overridden,
      minProtocol: s.minProtocol,
    }) ?? (tunnels.servesRevoked(s.crl) ? "a client of our servers was revoked" : null);
    if (reason) restartLater(reason);
  };

  const updates = new NetconfUpdates({
    clock,
    log,
    fetch: () => fetchNetworkConfig({ registry, cache, clock, log, signal: end.signal }, identity),
    apply,
    isRegistryNode: () => s.registryPrefix === identity.prefix,
    validUntil: () => s.validUntil,
  });

  /** Asks the registry for our country when same_country is set and --country is not. */
  const lookupCountries = async () => {
    if (!s.sameCountry.length || opts.country) return;
    for (const { family, ip } of own.firstIps()) {
      try {
        const code = await registry.getCountry(ip);
        if (code && own.setCountry(family, code)) {
          log.info(`Our country for IPv${family} (${ip}): ${code}`);
          cache.setOwnAddress(own.text());
        }
      } catch (e) {
        log.warn(`Cannot get the country of ${ip} from the registry: ${describeError(e)}`);
      }
    }
  };

  return {
    interfaces: [],
    prepare: () => Promise.resolve(),
    async start() {
      let local: string[] = [];
      try {
        local = await parts.localAddresses();
      } catch (e) {
        log.warn(`Cannot list the machine's addresses: ${describeError(e)}`);
      }
      own = createOwnAddresses({
        ips: opts.ip,
        servers: s.servers,
        network: identity.network,
        cached: cache.ownAddress(),
        local,
        country: opts.country,
        withCountry: s.sameCountry.length > 0,
      });
      cache.setOwnAddress(own.text());
      log.info(`Our address list: ${own.text() || "(empty: not reachable from outside)"}`);
      if (opensTunnels()) {
        await parts.nft(dropTableArgs()).catch(() => {}); // left by a killed node
        try {
          await parts.nft(["-f", "-"], drainRuleset());
        } catch (e) {
          log.warn(
            `Cannot set up nftables (${describeError(e)}): tunnels will close without draining`,
          );
        }
      }
      babel = parts.babelClient(runFile(opts.run, "babeldSocket"));
      await babel.waitConnected();
      protocol = new PeerProtocol({
        network: identity.network,
        prefix: identity.prefix,
        cert: identity.cert.der,
        key: identity.key,
        ca: identity.ca,
        isRevoked: (serial) => s.crl.has(serial),
        version: cache.version(),
        send: (host, port, bytes) => socket?.send(host, port, bytes),
        clock,
        log: log.child("peer"),
        minProtocol: () => s.minProtocol,
        registryPrefix: () => s.registryPrefix,
        handlers: {
          addressList: () => own.text(),
          onAddress: (p, list) =>
            void tunnels.onAddress(p, list).catch((e) =>
              log.error(`Cannot use the address list of ${cnFromPrefix(p)}: ${describeError(e)}`)
            ),
          onNewerVersion: () => updates.newVersion(),
          onRegistryVersion: () => updates.newVersion(),
          onTunnelKillRequest: (p) => tunnels.onKillRequest(p),
          onTunnelKillResponse: (p) => tunnels.onKillResponse(p),
          topology: () => tunnels.topology(),
        },
      });
      const proto = protocol;
      socket = parts.openPeerSocket(
        (host, port, bytes) => proto.receive(host, port, bytes),
        (e) => log.warn(`Peer protocol socket: ${e.message}`),
      );
      loops.push(tunnels.run(end.signal), updates.run(end.signal), lookupCountries());
      log.info(
        opensTunnels()
          ? `Overlay started: ${s.clientCount} client tunnels wanted, refresh every ` +
            `${s.tunnelRefreshS} s`
          : "Overlay started in --client mode: peer protocol and configuration updates only",
      );
    },
    onClientConnect(ev) {
      const a = tunnels.clientConnect(ev);
      return a.accept ? null : a.reason;
    },
    onHook(ev: HookEvent) {
      if (ev.type === "route-up") {
        void tunnels.routeUp(ev).catch((e) =>
          log.error(`Cannot handle route-up of ${ev.dev} (${ev.commonName}): ${describeError(e)}`)
        );
      } else if (ev.type === "client-disconnect") tunnels.clientDisconnect(ev);
    },
    tunnels: (): TunnelInfo[] =>
      tunnels.tunnels().filter((t) => t.direction === "client").map((t) => {
        const c = tunnels.clients.get(t.prefix)!;
        const a = c.addresses[c.index];
        return {
          direction: "client",
          peer: c.cn,
          iface: t.iface,
          protocol: a.proto,
          remote: `${a.ip} ${a.port}`,
          since: t.since,
          established: t.established,
        };
      }),
    children: (): ChildInfo[] =>
      [...processes].map(([iface, p]) => ({
        name: `openvpn ${iface}`,
        pid: p.pid,
        state: "running",
        restarts: 0,
        lastExit: null,
        since: p.since,
      })),
    async stop() {
      end.abort();
      await tunnels.stop();
      await Promise.race([Promise.allSettled(loops), clock.sleep(5000)]);
      cache.setOwnAddress(own.text());
      await socket?.close();
      socket = null;
      await babel?.close();
      babel = null;
      if (opensTunnels()) await parts.nft(dropTableArgs()).catch(() => {});
    },
  };
}

function cnToBits(cn: string): Bits | null {
  try {
    return prefixFromCn(cn);
  } catch {
    return null;
  }
}
