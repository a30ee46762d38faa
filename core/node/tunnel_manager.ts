// The overlay's tunnel manager (PROTOCOL.md §7.3, §7.5, §7.6, §7.9): keeps `client_count` OpenVPN
// client tunnels to random distant peers chosen from Babel's routes, bootstraps from the
// cache and the registry when cut off, retires its worst tunnel every `tunnel_refresh`
// seconds without stopping traffic, and keeps the books of clients served by our servers.
//
// Differences from the reference, deliberate: a Babel dump is taken at every tick (the stock
// babeld client keeps a live view, so dumps are cheap), ticks come every second while a
// removal is in progress, a dead OpenVPN client wakes the manager at once, and direct peers
// whose address list is not cached (clients of our servers, LAN neighbours) are asked for it
// (code 1) so that the cache holds more than the peers we opened tunnels to.

import { describeError } from "../errors.ts";
import {
  type Bits,
  cnFromPrefix,
  formatAddressList,
  parseAddressList,
  prefixFromCn,
} from "../addressing.ts";
import { type BabelModel, deriveModel } from "../babel/model.ts";
import type { BabelSnapshot } from "../babel/view.ts";
import { BABEL_INFINITY } from "../babel/parse.ts";
import { Code, TUNNEL_TICK_S } from "../constants.ts";
import type { Logger } from "../log.ts";
import type {
  ClientConnectEvent,
  ClientDisconnectEvent,
  ConnectAnswer,
  RouteUpEvent,
} from "../openvpn/hooks.ts";
import type { BootstrapPeer } from "../registry/client.ts";
import type { NodeCache } from "./cache.ts";
import type { Clock } from "../clock.ts";
import { type OwnAddresses } from "./addresses.ts";
import { Removals } from "./removal.ts";
import { ServedBook } from "./served.ts";
import {
  type BabelInterfaces,
  type ClientTunnel,
  ClientTunnels,
  type TunnelHost,
} from "./tunnel_clients.ts";
import {
  distantCandidates,
  tunnelLimit,
  tunnelToRetire,
  usableAddresses,
} from "./tunnel_policy.ts";

/** Network parameters and options the manager reads at every decision (they change live). */
export interface TunnelSettings {
  clientCount: number;
  tunnelRefreshS: number;
  helloS: number;
  /** 4 × hello. */
  timeoutS: number;
  registryPrefix: Bits | null;
  crl: ReadonlySet<bigint>;
  disabledProtos: readonly string[];
  sameCountry: readonly string[];
}

/** What the manager needs from the peer protocol (core/peer/protocol.ts PeerProtocol fits). */
export interface PeerLink {
  sendTo(prefix: Bits, code: number, payload?: Uint8Array): boolean;
  probe(prefix: Bits): boolean;
}

/** Babel as the manager uses it (core/babel/local.ts BabelClient fits). */
export interface BabelControl extends BabelInterfaces {
  dump(): Promise<BabelSnapshot>;
}

/** Options of {@link OverlayTunnels}. */
export interface TunnelManagerOptions {
  network: Bits;
  prefix: Bits;
  clock: Clock;
  log: Logger;
  random?: () => number;
  settings(): TunnelSettings;
  /** `--neighbour` peers (bit-strings), kept connected. */
  neighbours: readonly Bits[];
  babel: BabelControl;
  peers: PeerLink;
  cache: NodeCache;
  host: TunnelHost;
  /** The registry's getBootstrapPeer (§7.3). */
  bootstrap(): Promise<BootstrapPeer | null>;
  addresses: OwnAddresses;
  /** `--remote-gateway` values. */
  remoteGateways: readonly string[];
  /** Babel parameters of a run-time tunnel interface (core/babel/config.ts tunnelParams). */
  babelParams(): string;
  /** Our address list changed (learned address): save it. */
  onOwnAddressChange?(text: string): void;
  /** Every dump's model (staleness check, gossip). */
  onModel?(model: BabelModel): void;
  /**
   * Clients of our servers: the node records them from the hooks (accepted client-connect,
   * client-disconnect, server exit); the manager only reads the book. Default: an empty one.
   */
  served?: ServedBook;
}

/** One tunnel, for status displays. */
export interface OverlayTunnelInfo {
  direction: "client" | "server";
  prefix: Bits;
  iface: string;
  /** `ip,port,proto` of a client tunnel's current address. */
  remote: string | null;
  since: number;
  established: boolean;
  retiring: boolean;
}

/** Implementation: how long stop() waits for a tick in progress (e.g. a registry call). */
const STOP_WAIT_MS = 10_000;

/** The tunnel manager of one node (the overlay's part of the TunnelManager seam). */
export class OverlayTunnels {
  readonly #o: TunnelManagerOptions;
  readonly #random: () => number;
  readonly #keep: ReadonlySet<Bits>;
  readonly clients: ClientTunnels;
  readonly removals: Removals;
  /** Clients of our servers (the node's book, kept from the OpenVPN hooks). */
  readonly served: ServedBook;
  /** Address list text each client tunnel was opened with (for the cache). */
  readonly #sources = new Map<Bits, string>();
  /** Peers whose address we asked for (code 1) to open a tunnel. */
  readonly connecting = new Set<Bits>();
  /** 0, or the time (ms) before which we do not bootstrap again. */
  disconnected = 0;
  nextRefresh: number;
  /** Distant candidates left from the last dump. */
  distant: Bits[] = [];
  #model: BabelModel | null = null;
  #stopped = false;
  /** Peers whose tunnel we retired or that failed, not chosen before the given time (ms). */
  readonly #retired = new Map<Bits, number>();
  /** Direct peers asked for their address list (code 1) to cache it, and when (ms). */
  readonly #askedAddress = new Map<Bits, number>();
  /** getBootstrapPeer is asked at most once per tick interval. */
  #nextBootstrap = 0;
  #queue: Promise<void> = Promise.resolve();
  #wake: AbortController = new AbortController();

  constructor(o: TunnelManagerOptions) {
    this.#o = o;
    this.#random = o.random ?? Math.random;
    this.#keep = new Set(o.neighbours);
    this.served = o.served ?? new ServedBook();
    this.nextRefresh = o.clock.now() + o.settings().tunnelRefreshS * 1000;
    this.clients = new ClientTunnels({
      host: o.host,
      babel: o.babel,
      log: o.log,
      clock: o.clock,
      remoteGateways: o.remoteGateways,
      babelParams: o.babelParams,
      // A lost tunnel or a next address to try is handled at once; a peer that failed is
      // retried at the normal pace.
      onExit: (t) => {
        if (t.established || t.index + 1 < t.addresses.length) this.wake();
      },
    });
    this.removals = new Removals(o.network, o.clock, () => o.settings(), o.log);
  }

  /** The model of the last dump, if any. */
  get model(): BabelModel | null {
    return this.#model;
  }

  /** Identified Babel neighbours of the last dump (network version gossip, §7.7). */
  neighbourPrefixes(): Bits[] {
    return this.#model ? [...this.#model.neighbours.keys()] : [];
  }

  /** Whether the registry node is reachable (§7.4). */
  registryReachable(): boolean {
    const reg = this.#o.settings().registryPrefix;
    if (!reg) return false;
    if (reg === this.#o.prefix) return true;
    return (this.#model?.knownNodes.has(reg) ?? false) || this.clients.has(reg) ||
      this.served.has(reg);
  }

  /** Runs `fn` after every state change queued before it (one change at a time). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.then(() => {}, () => {});
    return run;
  }

  /** Ends the current pause of {@link run} early. */
  wake(): void {
    this.#wake.abort();
  }

  /** Ticks every 5 s (1 s while a removal is in progress) until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const wake = this.#wake;
      try {
        await this.tick();
      } catch (e) {
        this.#o.log.error(`Tunnel manager tick failed: ${describeError(e)}; retrying`);
      }
      if (signal.aborted) break;
      if (!wake.signal.aborted) {
        const ms = this.removals.size ? 1000 : TUNNEL_TICK_S * 1000;
        await this.#o.clock.sleep(ms, AbortSignal.any([signal, wake.signal]));
      }
      if (wake.signal.aborted) this.#wake = new AbortController();
    }
  }

  /** One tick (§7.5): clean dead tunnels, then process a fresh Babel dump. */
  tick(): Promise<void> {
    return this.#serial(async () => {
      await this.#cleanDead();
      let snapshot: BabelSnapshot;
      try {
        snapshot = await this.#o.babel.dump();
      } catch (e) {
        this.#o.log.warn(`No Babel dump (${describeError(e)}); tunnels unchanged until next tick`);
        return;
      }
      await this.#onDump(snapshot);
    });
  }

  /** Stops every client tunnel and deletes their taps (at exit). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake();
    // At once, even while a tick waits for the registry; then whatever that tick started.
    await this.clients.closeAll();
    await Promise.race([this.#queue, this.#o.clock.sleep(STOP_WAIT_MS)]);
    await this.clients.closeAll();
  }

  // --- Tick and dump (§7.5) ---

  async #cleanDead(): Promise<void> {
    for (const t of this.clients.list()) {
      if (!t.process.done) continue;
      if (t.established) {
        await this.#close(t.prefix, "OpenVPN client exited (tunnel lost)");
      } else if (await this.clients.next(t)) {
        this.#o.log.info(`Tunnel to ${t.cn} failed; trying its next address`);
      } else {
        // Not tried again for a while, even if a code 1 answer refreshes its address.
        await this.#close(t.prefix, "every address failed", true);
      }
    }
  }

  async #onDump(snapshot: BabelSnapshot): Promise<void> {
    const s = this.#o.settings();
    const model = deriveModel(snapshot, this.#o.network, s.registryPrefix ?? undefined);
    this.#model = model;
    for (const [key, prefixes] of model.buggy) {
      this.#o.log.debug(`Babel neighbour ${key} announces several prefixes: ${prefixes}`);
    }
    this.#o.onModel?.(model);
    this.#learnAddresses(model);
    await this.removals.advance(snapshot, this.#actions);
    const now = this.#o.clock.now();
    if (now > this.nextRefresh) {
      await this.#retireOne(model);
      this.nextRefresh = now + s.tunnelRefreshS * 1000;
    }
    await this.#openTunnels(model);
  }

  readonly #actions = {
    drain: async (p: Bits) => {
      const t = this.clients.get(p);
      if (t) await this.clients.drain(t);
    },
    drained: (p: Bits, snapshot: BabelSnapshot) => {
      const t = this.clients.get(p);
      return !t ||
        !snapshot.routes.some((r) =>
          r.installed && r.iface === t.iface && r.metric < BABEL_INFINITY
        );
    },
    send: (p: Bits, code: number) => this.#o.peers.sendTo(p, code),
    close: (p: Bits, reason: string) => this.#close(p, reason, true),
  };

  /**
   * Asks each direct peer (identified Babel neighbour or client of our servers) whose address
   * list is not cached for it (code 1), again after a tunnel_refresh if no answer came; the
   * answer is cached (onAddress). Without this a node learns only the addresses of peers it
   * opened tunnels to, and after a restart cut off from those and from the registry it would
   * have nobody else to try (§7.3 cache step).
   */
  #learnAddresses(model: BabelModel): void {
    const o = this.#o;
    const now = o.clock.now();
    const again = o.settings().tunnelRefreshS * 1000;
    const direct = new Set([...model.neighbours.keys(), ...this.served.prefixes()]);
    for (const [p, at] of this.#askedAddress) {
      if (!direct.has(p) || at + again <= now) this.#askedAddress.delete(p);
    }
    for (const p of direct) {
      if (p === o.prefix || this.#askedAddress.has(p) || o.cache.hasPeer(p)) continue;
      // No session yet: only a hello0 went out (rate-limited); asked at a later dump.
      if (o.peers.sendTo(p, Code.ADDRESS)) this.#askedAddress.set(p, now);
    }
  }

  async #retireOne(model: BabelModel): Promise<void> {
    const s = this.#o.settings();
    const p = tunnelToRetire({
      connections: this.clients.list().map((t) => t.prefix),
      removing: this.removals.prefixes(),
      model,
      keep: this.#keep,
      limit: tunnelLimit(s.clientCount, this.served.size > 0, this.disconnected !== 0),
    });
    if (p === null) return;
    if (!this.clients.get(p)?.established) {
      await this.#close(p, "retired (never came up)", true);
      return;
    }
    // The next tick (right away) raises the cost and asks the peer.
    if (this.removals.startClient(p)) this.wake();
  }

  async #openTunnels(model: BabelModel): Promise<void> {
    const o = this.#o;
    const s = o.settings();
    const C = s.clientCount;
    let count = C - this.clients.size;
    if (count <= 0) return;
    this.connecting.clear();
    const now = o.clock.now();
    const known = model.knownNodes;
    const reg = s.registryPrefix;
    const isRegistry = reg === o.prefix;
    for (const [p, until] of this.#retired) if (until <= now) this.#retired.delete(p);
    // A peer whose tunnel was just retired, or failed, is not picked for a tunnel_refresh.
    const distant = [...model.distantNodes].filter((p) => !this.#retired.has(p));
    let candidates: Bits[] | null = distantCandidates(distant, this.#keep, this.#random);
    if (isRegistry && candidates.length === 0) {
      candidates = null;
    } else if (this.registryReachable()) {
      this.disconnected = 0;
      // Only once Babel has a route to it: a hello0 lost for want of a route counts in the
      // 60 s rate limit (§6.3).
      if (reg && !isRegistry && known.has(reg)) o.peers.probe(reg);
    } else if (this.disconnected < now) {
      o.log.info(
        `No route to the registry (${model.neighbours.size} neighbours, ` +
          `${model.distantNodes.size} distant nodes); bootstrapping`,
      );
      const n = Math.floor(this.#random() * (known.size + 1));
      this.disconnected = now + s.timeoutS * 1000 * (1 + n);
      const kept = candidates;
      candidates = null;
      if (known.size > 0 && !isRegistry) {
        // An island: force a tunnel towards a node the registry knows.
        const bp = await this.#bootstrapPeer();
        if (bp === undefined) candidates = kept; // registry silent: assume we are fine
        else if (bp && !known.has(bp.prefix) && await this.makeTunnel(bp.prefix, bp.addresses)) {
          if (--count === 0) return;
        }
      }
    }
    if (candidates?.length) {
      if (this.served.size === 0) count = Math.max(0, Math.min(2, C) - this.clients.size);
      while (count > 0 && candidates.length) {
        const p = candidates.pop()!;
        if (this.clients.has(p) || this.served.has(p)) continue;
        const address = o.cache.peerAddress(p);
        if (address !== null) {
          if (await this.makeTunnel(p, address)) count--;
        } else if (o.peers.sendTo(p, Code.ADDRESS)) {
          this.connecting.add(p);
          count--;
        }
      }
      this.distant = candidates;
      return;
    }
    this.distant = [];
    await this.#fromCache(count, known, isRegistry);
  }

  /** Mode "cache" of §7.5. */
  async #fromCache(count: number, known: ReadonlySet<Bits>, isRegistry: boolean): Promise<void> {
    const o = this.#o;
    const cached = o.cache.peers({ exclude: o.prefix });
    let opened = 0;
    for (const { prefix, address } of cached) {
      if (known.has(prefix)) continue;
      if (await this.makeTunnel(prefix, address) && ++opened >= count) return;
    }
    if (opened > 0 || known.size > 0) return;
    if (cached.length === 0 && !isRegistry) {
      const bp = await this.#bootstrapPeer();
      if (bp && await this.makeTunnel(bp.prefix, bp.addresses)) return;
    }
    // Last resort: peers whose last attempt failed.
    for (const { prefix, address } of o.cache.peers({ tried: 1, exclude: o.prefix })) {
      if (await this.makeTunnel(prefix, address)) return;
    }
  }

  /** getBootstrapPeer (§7.3): the peer (added to the cache), null if none, undefined on error. */
  async #bootstrapPeer(): Promise<BootstrapPeer | null | undefined> {
    const o = this.#o;
    const now = o.clock.now();
    if (now < this.#nextBootstrap) return null;
    this.#nextBootstrap = now + TUNNEL_TICK_S * 1000;
    let bp: BootstrapPeer | null;
    try {
      bp = await o.bootstrap();
    } catch (e) {
      o.log.warn(`Registry gave no bootstrap peer: ${describeError(e)}`);
      return undefined;
    }
    if (!bp) {
      o.log.info("The registry knows no bootstrap peer right now");
      return null;
    }
    if (bp.prefix === o.prefix) {
      o.log.warn("Buggy registry: it gave us our own prefix as bootstrap peer; ignored");
      return null;
    }
    o.log.info(`Bootstrap peer from the registry: ${cnFromPrefix(bp.prefix)}`);
    if (bp.addresses) o.cache.addPeer(bp.prefix, bp.addresses);
    return bp;
  }

  /**
   * Opens a client tunnel to `p` (§7.5 makeTunnel): never to ourselves nor to a peer we
   * already have a tunnel with; only through usable addresses. True when started.
   */
  async makeTunnel(p: Bits, addressText: string): Promise<boolean> {
    const o = this.#o;
    if (this.#stopped || p === o.prefix || this.clients.has(p) || this.served.has(p)) {
      return false;
    }
    const s = o.settings();
    const cn = cnFromPrefix(p);
    const usable = usableAddresses(parseAddressList(addressText), {
      disabled: s.disabledProtos,
      sameCountry: s.sameCountry,
      myCountry: (f) => o.addresses.country(f),
    });
    o.cache.setTry(p, 1);
    if (usable.length === 0) {
      o.log.debug(`No usable address for ${cn} in ${JSON.stringify(addressText)}`);
      return false;
    }
    try {
      await this.clients.open(p, cn, usable);
    } catch (e) {
      o.log.warn(`Cannot open a tunnel to ${cn}: ${describeError(e)}`);
      o.cache.setTry(p, 0);
      return false;
    }
    this.#sources.set(p, addressText);
    this.nextRefresh = o.clock.now() + s.tunnelRefreshS * 1000;
    return true;
  }

  async #close(p: Bits, reason: string, avoid = false): Promise<void> {
    if (avoid) {
      this.#retired.set(p, this.#o.clock.now() + this.#o.settings().tunnelRefreshS * 1000);
    }
    this.removals.abort(p);
    this.#sources.delete(p);
    await this.clients.close(p, reason);
  }

  // --- Peer protocol events (§6.5) ---

  /** Code 1 answer: remember the list; open the tunnel we were waiting for. */
  onAddress(p: Bits, addressText: string): Promise<void> {
    return this.#serial(async () => {
      if (p === this.#o.prefix || !addressText) return;
      this.#o.cache.addPeer(p, addressText);
      if (!this.connecting.delete(p)) return;
      if (this.clients.size >= this.#o.settings().clientCount) return;
      await this.makeTunnel(p, addressText);
    });
  }

  /** Code 2: a client of ours retires its tunnel; drain, then answer code 3 (§8.4.5). */
  onKillRequest(p: Bits): void {
    const ifaces = this.served.interfaces(p);
    if (this.removals.onRequest(p, ifaces)) this.wake();
  }

  /** Code 3: the server side agrees; our tunnel closes once our routes left it. */
  onKillResponse(p: Bits): void {
    if (this.removals.onResponse(p)) this.wake();
  }

  /** Code 5 answer: "<n> <client CNs…> <served CNs…>" (§6.5). */
  topology(): string {
    const clients = this.clients.list().map((t) => t.cn);
    const served = this.served.prefixes().map(cnFromPrefix);
    return [String(clients.length), ...clients, ...served].join(" ");
  }

  // --- OpenVPN hook events (§8.1.4) ---

  /**
   * A client connects to one of our servers: refuse revoked ones and ourselves; give up our
   * duplicate tunnel to it. The node records accepted clients in the served book.
   */
  clientConnect(ev: ClientConnectEvent): ConnectAnswer {
    const o = this.#o;
    let p: Bits;
    try {
      p = prefixFromCn(ev.commonName);
    } catch {
      return { accept: false, reason: `invalid common name ${ev.commonName}` };
    }
    if (o.settings().crl.has(ev.serial)) {
      o.log.info(`Refusing ${ev.commonName} on ${ev.dev}: certificate ${ev.serial} is revoked`);
      return { accept: false, reason: "certificate revoked" };
    }
    if (p === o.prefix) return { accept: false, reason: "that is our own certificate" };
    if (this.clients.has(p) && o.prefix < p) {
      // Duplicate suppression (§7.5): the node with the smaller prefix gives up its client.
      void this.#serial(async () => {
        if (!this.served.has(p)) return;
        await this.#close(p, "duplicate of its tunnel to us");
        o.cache.setTry(p, 0);
      }).catch((e) =>
        o.log.error(`Cannot close our duplicate tunnel to ${ev.commonName}: ${describeError(e)}`)
      );
    }
    return { accept: true, externalIp: ev.trustedIp };
  }

  /** A client left one of our servers (the node already took it out of the book). */
  clientDisconnect(ev: ClientDisconnectEvent): void {
    let p: Bits;
    try {
      p = prefixFromCn(ev.commonName);
    } catch {
      return;
    }
    const r = this.removals.get(p);
    if (r?.side === "server" && r.ifaces.includes(ev.dev)) this.removals.abort(p);
  }

  /** One of our client tunnels is up (§7.5): check the server, update cache and address. */
  routeUp(ev: RouteUpEvent): Promise<void> {
    return this.#serial(async () => {
      const o = this.#o;
      const t = this.clients.byIface(ev.dev);
      if (!t || t.cn !== ev.commonName) {
        o.log.debug(`route-up for ${ev.commonName} on ${ev.dev} matches no tunnel; ignored`);
        return;
      }
      if (ev.time < Math.floor(t.process.startedAt / 1000)) return; // an older process
      if (o.settings().crl.has(ev.serial)) {
        await this.#close(t.prefix, `server certificate ${ev.serial} is revoked`);
        return;
      }
      t.established = true;
      t.serial = ev.serial;
      t.establishedAt = o.clock.now();
      o.log.info(`Tunnel to ${t.cn} is up on ${t.iface}`);
      const source = this.#sources.get(t.prefix);
      if (t.index > 0 && source) {
        o.cache.addPeer(t.prefix, source, formatAddressList([t.addresses[t.index]]));
      } else o.cache.setTry(t.prefix, 0);
      if (ev.externalIp && o.addresses.learn(ev.externalIp)) {
        o.log.info(`Our address as seen by ${t.cn}: ${ev.externalIp}`);
        o.onOwnAddressChange?.(o.addresses.text());
      }
    });
  }

  // --- Network configuration changes (§7.7) ---

  /** Closes client tunnels to revoked servers or to `prefixes`; returns how many. */
  dropRevoked(crl: ReadonlySet<bigint>, prefixes: readonly Bits[] = []): Promise<number> {
    return this.#serial(async () => {
      let n = 0;
      for (const t of this.clients.list()) {
        if ((t.serial !== undefined && crl.has(t.serial)) || prefixes.includes(t.prefix)) {
          await this.#close(t.prefix, "certificate revoked");
          n++;
        }
      }
      return n;
    });
  }

  /** Whether a client of our servers has a revoked certificate (a restart drops it). */
  servesRevoked(crl: ReadonlySet<bigint>): boolean {
    return this.served.entries().some((e) => crl.has(e.serial));
  }

  /** Every tunnel, for status displays. */
  tunnels(): OverlayTunnelInfo[] {
    const out: OverlayTunnelInfo[] = this.clients.list().map((t: ClientTunnel) => ({
      direction: "client",
      prefix: t.prefix,
      iface: t.iface,
      remote: formatAddressList([t.addresses[t.index]], { withCountry: false }),
      since: t.establishedAt ?? t.openedAt,
      established: t.established,
      retiring: this.removals.has(t.prefix),
    }));
    for (const e of this.served.entries()) {
      if (e.prefix === null) continue;
      out.push({
        direction: "server",
        prefix: e.prefix,
        iface: e.iface,
        remote: null,
        since: e.since,
        established: true,
        retiring: this.removals.has(e.prefix),
      });
    }
    return out;
  }
}
