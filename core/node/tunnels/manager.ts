// The tunnel manager (PROTOCOL.md §7.3, §7.5, §7.6, §7.9): the loop and the events. Every few
// seconds it reads Babel's routes and keeps `client_count` OpenVPN client tunnels to random
// distant peers (opening.ts), bootstraps when cut off from the registry (bootstrap.ts),
// retires its worst tunnel every `tunnel_refresh` seconds without stopping traffic
// (retirement.ts), and answers the events of the peer protocol and of OpenVPN.
//
// Differences from the reference, deliberate: a Babel dump is taken at every tick (the stock
// babeld client keeps a live view, so dumps are cheap), ticks come every second while a
// removal is in progress, a dead OpenVPN client wakes the manager at once, and direct peers
// whose address list is not cached (clients of our servers, LAN neighbours) are asked for it
// (code 1) so that the cache holds more than the peers we opened tunnels to.

import { type Bits, cnFromPrefix, formatAddressList, prefixFromCn } from "../../addressing.ts";
import { type BabelModel, deriveModel } from "../../babel/model.ts";
import type { BabelSnapshot } from "../../babel/view.ts";
import type { Clock } from "../../clock.ts";
import { TUNNEL_TICK_S } from "../../constants.ts";
import { describeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { ClientDisconnectEvent, RouteUpEvent } from "../../openvpn/hooks.ts";
import type { BootstrapPeer } from "../../registry/client.ts";
import type { ChildStatus, TunnelStatus } from "../../status/document.ts";
import type { OwnAddresses } from "../addresses.ts";
import type { NodeCache } from "../cache.ts";
import { isRevoked } from "../revocation.ts";
import { Bootstrap } from "./bootstrap.ts";
import { type ClientHost, ClientTunnels } from "./clients.ts";
import { TunnelOpener } from "./opening.ts";
import { type RemovalActions, removalActions, Removals, tunnelToRetireNow } from "./retirement.ts";
import type { BabelControl, PeerLink, TunnelSettings } from "./links.ts";
import type { ServedBook } from "./served.ts";

/** Options of {@link TunnelManager}. */
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
  host: ClientHost;
  /** The registry's getBootstrapPeer (§7.3). */
  bootstrap(): Promise<BootstrapPeer | null>;
  addresses: OwnAddresses;
  /** Country of a peer address that carries none (local GeoIP, §7.11); absent: unknown. */
  lookupCountry?(ip: string): string | undefined;
  /** `--remote-gateway` values. */
  remoteGateways: readonly string[];
  /** Babel parameters of a run-time tunnel interface (core/babel/config.ts tunnelParams). */
  babelParams(): string;
  /** Our address list changed (learned address): save it. */
  onOwnAddressChange?(text: string): void;
  /** Every dump's model (staleness check, gossip). */
  onModel?(model: BabelModel): void;
  /** Builds the model from a dump (default deriveModel; bench/simulate.ts gives its own). */
  deriveModel?: typeof deriveModel;
  /** Clients of our servers: the node keeps this book from the hooks; the manager reads it. */
  served: ServedBook;
}

/** Implementation: how long stop() waits for a tick in progress (e.g. a registry call). */
const STOP_WAIT_MS = 10_000;

/** The tunnel manager of one node. */
export class TunnelManager {
  readonly #o: TunnelManagerOptions;
  readonly clients: ClientTunnels;
  readonly removals: Removals;
  readonly bootstrap: Bootstrap;
  readonly opener: TunnelOpener;
  readonly served: ServedBook;
  readonly #keep: ReadonlySet<Bits>;
  readonly #actions: RemovalActions;
  /** When the next tunnel is retired (ms). */
  nextRefresh: number;
  #model: BabelModel | null = null;
  #queue: Promise<void> = Promise.resolve();
  #wake: AbortController = new AbortController();

  constructor(o: TunnelManagerOptions) {
    this.#o = o;
    const random = o.random ?? Math.random;
    this.#keep = new Set(o.neighbours);
    this.served = o.served;
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
    this.#actions = removalActions(
      this.clients,
      (p, code) => o.peers.sendTo(p, code),
      (p, reason) => this.#close(p, reason, true),
    );
    this.opener = new TunnelOpener({
      ...o,
      random,
      keep: this.#keep,
      clients: this.clients,
      bootstrap: () => this.bootstrap,
      registryReachable: () => this.registryReachable(),
      onOpened: () => this.nextRefresh = o.clock.now() + o.settings().tunnelRefreshS * 1000,
    });
    this.bootstrap = new Bootstrap({
      ...o,
      random,
      ask: o.bootstrap,
      makeTunnel: (p, a) => this.opener.makeTunnel(p, a),
      failedRecently: (p) => this.opener.avoided(p),
    });
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

  /** Stops every client tunnel (at exit). */
  async stop(): Promise<void> {
    this.opener.stopped = true;
    this.wake();
    // At once, even while a tick waits for the registry; then whatever that tick started.
    await this.clients.closeAll();
    await Promise.race([this.#queue, this.#o.clock.sleep(STOP_WAIT_MS)]);
    await this.clients.closeAll();
  }

  /** Opens a client tunnel to `p` (opening.ts); true when started. */
  makeTunnel(p: Bits, addressText: string): Promise<boolean> {
    return this.opener.makeTunnel(p, addressText);
  }

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
    const derive = this.#o.deriveModel ?? deriveModel;
    const model = derive(snapshot, this.#o.network, s.registryPrefix ?? undefined);
    this.#model = model;
    for (const [key, prefixes] of model.buggy) {
      this.#o.log.debug(`Babel neighbour ${key} announces several prefixes: ${prefixes}`);
    }
    this.#o.onModel?.(model);
    this.opener.learnAddresses(model);
    await this.removals.advance(snapshot, this.#actions);
    const now = this.#o.clock.now();
    if (now > this.nextRefresh) {
      await this.#retireOne(model);
      this.nextRefresh = now + s.tunnelRefreshS * 1000;
    }
    await this.opener.openTunnels(model);
    this.opener.learnReserve(model);
  }

  async #retireOne(model: BabelModel): Promise<void> {
    const r = tunnelToRetireNow({
      clients: this.clients,
      removals: this.removals,
      model,
      keep: this.#keep,
      clientCount: this.#o.settings().clientCount,
      serving: this.served.size > 0,
      backingOff: this.bootstrap.backingOff,
    });
    if (r === null) return;
    if (r.how === "close") {
      await this.#close(r.prefix, "retired (never came up)", true);
      return;
    }
    // The next tick (right away) asks the peer and drains the tunnel.
    if (this.removals.startClient(r.prefix)) this.wake();
  }

  async #close(p: Bits, reason: string, avoid = false): Promise<void> {
    if (avoid) this.opener.avoid(p);
    this.removals.abort(p);
    this.opener.closed(p);
    await this.clients.close(p, reason);
  }

  // --- Peer protocol events (§6.5) ---

  /** Code 1 answer: remember the list; open the tunnel we were waiting for. */
  onAddress(p: Bits, addressText: string): Promise<void> {
    return this.#serial(() => this.opener.onAddress(p, addressText));
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
   * A client was admitted on one of our servers: of two crossed tunnels, the node with the
   * smaller prefix gives up its client (duplicate suppression, §7.5).
   */
  clientConnected(p: Bits): void {
    const o = this.#o;
    if (!this.clients.has(p) || o.prefix >= p) return;
    void this.#serial(async () => {
      if (!this.served.has(p)) return;
      await this.#close(p, "duplicate of its tunnel to us");
      o.cache.setTry(p, 0);
    }).catch((e) =>
      o.log.error(`Cannot close our duplicate tunnel to ${cnFromPrefix(p)}: ${describeError(e)}`)
    );
  }

  /** A client left one of our servers (the node already took it out of the book). */
  clientDisconnected(ev: ClientDisconnectEvent): void {
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
      if (isRevoked(o.settings().crl, ev.serial)) {
        await this.#close(t.prefix, `server certificate ${ev.serial} is revoked`);
        return;
      }
      t.established = true;
      t.serial = ev.serial;
      t.establishedAt = o.clock.now();
      o.log.info(`Tunnel to ${t.cn} is up on ${t.iface}`);
      const source = this.opener.source(t.prefix);
      if (t.index > 0 && source) {
        o.cache.addPeer(t.prefix, source, formatAddressList([t.addresses[t.index]]));
      } else o.cache.setTry(t.prefix, 0);
      if (ev.externalIp && o.addresses.learn(ev.externalIp)) {
        o.log.info(`Our address as seen by ${t.cn}: ${ev.externalIp}`);
        o.onOwnAddressChange?.(o.addresses.text());
      }
    });
  }

  /** Closes the client tunnels to `prefixes` (revocation.ts decides which); returns how many. */
  closeTunnels(prefixes: readonly Bits[], reason: string): Promise<number> {
    return this.#serial(async () => {
      let n = 0;
      for (const p of prefixes) {
        if (!this.clients.has(p)) continue;
        await this.#close(p, reason);
        n++;
      }
      return n;
    });
  }

  // --- Status ---

  /**
   * Every tunnel, client and served, as the status document shows it; `costOf` gives the Babel
   * cost of the peer's neighbour on an interface.
   */
  status(costOf: (iface: string, peer: string) => number | null): TunnelStatus[] {
    const iso = (ms: number) => new Date(ms).toISOString();
    const out: TunnelStatus[] = this.clients.list().map((t) => {
      const a = t.addresses[t.index];
      return {
        direction: "client",
        peer: t.cn,
        interface: t.iface,
        protocol: a.proto,
        remote: `${a.ip} ${a.port}`,
        since: iso(t.establishedAt ?? t.openedAt),
        established: t.established,
        retiring: this.removals.has(t.prefix),
        babelCost: costOf(t.iface, t.cn),
      };
    });
    for (const e of this.served.entries()) {
      out.push({
        direction: "server",
        peer: e.cn,
        interface: e.iface,
        protocol: e.protocol,
        remote: `${e.trustedIp} ${e.trustedPort}`,
        since: iso(e.since),
        established: true,
        retiring: this.removals.has(e.prefix),
        babelCost: costOf(e.iface, e.cn),
      });
    }
    return out;
  }

  /** The OpenVPN client processes, as the status document shows children. */
  children(): ChildStatus[] {
    return this.clients.list().filter((t) => !t.process.done).map((t) => ({
      name: `openvpn ${t.iface}`,
      pid: t.process.pid,
      state: "running",
      restarts: 0,
      lastExit: null,
    }));
  }
}
