// Opening tunnels (PROTOCOL.md §7.5): to whom new client tunnels go. Distant nodes from Babel's
// routes in random order (`--neighbour` peers first), each through a cached address or after
// asking the peer for its address list (code 1); bootstrap.ts when the registry is out of
// sight. Direct peers whose address list is not cached are asked for it as well, and a few
// distant nodes until twice client_count peers are cached, so that a node restarted cut off
// from the registry, or whose every tunnel went to a host that died with the registry, still
// has peers to try (§7.3 cache step).

import { type Bits, cnFromPrefix, parseAddressList } from "../../addressing.ts";
import type { BabelModel } from "../../babel/model.ts";
import type { Clock } from "../../clock.ts";
import { Code } from "../../constants.ts";
import { describeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { OwnAddresses } from "../addresses.ts";
import type { NodeCache } from "../cache.ts";
import type { Bootstrap } from "./bootstrap.ts";
import type { ClientTunnels } from "./clients.ts";
import type { PeerLink, TunnelSettings } from "./links.ts";
import { distantCandidates, usableAddresses } from "./policy.ts";
import type { ServedBook } from "./served.ts";

/** What opening tunnels needs. */
export interface OpenerOptions {
  prefix: Bits;
  clock: Clock;
  log: Logger;
  random: () => number;
  settings(): TunnelSettings;
  /** `--neighbour` peers. */
  keep: ReadonlySet<Bits>;
  peers: PeerLink;
  cache: NodeCache;
  addresses: OwnAddresses;
  /** Country of a peer address that carries none (local GeoIP, §7.11); absent: unknown. */
  lookupCountry?(ip: string): string | undefined;
  clients: ClientTunnels;
  served: ServedBook;
  bootstrap(): Bootstrap;
  /** Whether the registry node is reachable (§7.4). */
  registryReachable(): boolean;
  /** A tunnel was opened (the next retirement then waits a whole tunnel_refresh). */
  onOpened(): void;
}

/** Chooses and opens client tunnels. */
export class TunnelOpener {
  readonly #o: OpenerOptions;
  /** Peers whose address we asked for (code 1) to open a tunnel. */
  readonly connecting = new Set<Bits>();
  /** Distant candidates left from the last dump. */
  distant: Bits[] = [];
  /** No tunnel is opened any more (the node stops). */
  stopped = false;
  /** Peers whose tunnel we retired or that failed, not chosen before the given time (ms). */
  readonly #avoided = new Map<Bits, number>();
  /** Address list text each client tunnel was opened with (for the cache). */
  readonly #sources = new Map<Bits, string>();
  /** Direct peers asked for their address list (code 1) to cache it, and when (ms). */
  readonly #askedAddress = new Map<Bits, number>();
  /**
   * Distant nodes chosen for the reserve of cached addresses: since when (ms), and whether
   * code 1 went out (else only a hello0 did, and the same node is asked at the next dump).
   */
  readonly #reserve = new Map<Bits, { since: number; asked: boolean }>();

  constructor(o: OpenerOptions) {
    this.#o = o;
  }

  /** Whether `p`'s tunnel was retired or failed less than a tunnel_refresh ago. */
  avoided(p: Bits): boolean {
    const until = this.#avoided.get(p);
    return until !== undefined && until > this.#o.clock.now();
  }

  /** `p` is not chosen again for a tunnel_refresh (its tunnel was retired or failed). */
  avoid(p: Bits): void {
    this.#avoided.set(p, this.#o.clock.now() + this.#o.settings().tunnelRefreshS * 1000);
  }

  /** The address list text the tunnel to `p` was opened with, while it is open. */
  source(p: Bits): string | undefined {
    return this.#sources.get(p);
  }

  /** The tunnel to `p` closed. */
  closed(p: Bits): void {
    this.#sources.delete(p);
  }

  /**
   * Asks each direct peer (identified Babel neighbour or client of our servers) whose address
   * list is not cached for it (code 1), again after a tunnel_refresh if no answer came; the
   * answer is cached (onAddress).
   */
  learnAddresses(model: BabelModel): void {
    const o = this.#o;
    const now = o.clock.now();
    const again = o.settings().tunnelRefreshS * 1000;
    const direct = new Set([...model.neighbours.keys(), ...o.served.prefixes()]);
    for (const [p, at] of this.#askedAddress) {
      if (!direct.has(p) || at + again <= now) this.#askedAddress.delete(p);
    }
    for (const p of direct) {
      if (p === o.prefix || this.#askedAddress.has(p) || o.cache.hasPeer(p)) continue;
      // No session yet: only a hello0 went out (rate-limited); asked at a later dump.
      if (o.peers.sendTo(p, Code.ADDRESS)) this.#askedAddress.set(p, now);
    }
  }

  /**
   * Keeps `2 × client_count` usable peers cached (after openTunnels: peers it is asking are left
   * out): asks that many distant nodes at most at a time, each again only after a
   * tunnel_refresh, so that the hello0s stay few.
   */
  learnReserve(model: BabelModel): void {
    const o = this.#o;
    const now = o.clock.now();
    const again = o.settings().tunnelRefreshS * 1000;
    // A cached peer whose tunnel failed (try = 1) does not count: asking refreshes it.
    const usable = (p: Bits) => o.cache.peerAddress(p) !== null;
    for (const [p, r] of this.#reserve) {
      if (r.since + again <= now || usable(p) || !model.distantNodes.has(p)) {
        this.#reserve.delete(p);
      }
    }
    const want = 2 * o.settings().clientCount - o.cache.usablePeerCount() - this.#reserve.size;
    if (want > 0) {
      const fresh = [...model.distantNodes].filter((p) =>
        p !== o.prefix && !this.#reserve.has(p) && !usable(p) &&
        !this.connecting.has(p)
      );
      const picked = distantCandidates(fresh, o.keep, o.random).slice(-want);
      for (const p of picked) this.#reserve.set(p, { since: now, asked: false });
    }
    for (const [p, r] of this.#reserve) {
      if (!r.asked) r.asked = o.peers.sendTo(p, Code.ADDRESS);
    }
  }

  /** Opens the tunnels missing to reach client_count (at most 2 while serving nobody). */
  async openTunnels(model: BabelModel): Promise<void> {
    const o = this.#o;
    const s = o.settings();
    const C = s.clientCount;
    let count = C - o.clients.size;
    if (count <= 0) return;
    this.connecting.clear();
    const now = o.clock.now();
    const known = model.knownNodes;
    const reg = s.registryPrefix;
    const isRegistry = reg === o.prefix;
    const bootstrap = o.bootstrap();
    for (const [p, until] of this.#avoided) if (until <= now) this.#avoided.delete(p);
    const distant = [...model.distantNodes].filter((p) => !this.#avoided.has(p));
    let candidates: Bits[] | null = distantCandidates(distant, o.keep, o.random);
    if (isRegistry && candidates.length === 0) {
      candidates = null;
    } else if (o.registryReachable()) {
      bootstrap.reached();
      // Only once Babel has a route to it: a hello0 lost for want of a route counts in the
      // 60 s rate limit (§6.3).
      if (reg && !isRegistry && known.has(reg)) o.peers.probe(reg);
    } else if (bootstrap.due(known.size, s.timeoutS)) {
      o.log.info(
        `No route to the registry (${model.neighbours.size} neighbours, ` +
          `${model.distantNodes.size} distant nodes); bootstrapping`,
      );
      const kept = candidates;
      candidates = null;
      if (known.size > 0 && !isRegistry) {
        // An island: force a tunnel towards a node the registry knows.
        const r = await bootstrap.island(known);
        if (r === "silent") candidates = kept; // registry silent: assume we are fine
        else if (r === "opened" && --count === 0) return;
      }
    }
    if (candidates?.length) {
      if (o.served.size === 0) count = Math.max(0, Math.min(2, C) - o.clients.size);
      while (count > 0 && candidates.length) {
        const p = candidates.pop()!;
        if (o.clients.has(p) || o.served.has(p)) continue;
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
    await bootstrap.fromCache(count, known, isRegistry);
  }

  /** Code 1 answer: remember the list; open the tunnel we were waiting for. */
  async onAddress(p: Bits, addressText: string): Promise<void> {
    const o = this.#o;
    if (p === o.prefix || !addressText) return;
    o.cache.addPeer(p, addressText);
    if (!this.connecting.delete(p)) return;
    if (o.clients.size >= o.settings().clientCount) return;
    await this.makeTunnel(p, addressText);
  }

  /**
   * Opens a client tunnel to `p` (§7.5 makeTunnel): never to ourselves nor to a peer we
   * already have a tunnel with; only through usable addresses. True when started.
   */
  async makeTunnel(p: Bits, addressText: string): Promise<boolean> {
    const o = this.#o;
    if (this.stopped || p === o.prefix || o.clients.has(p) || o.served.has(p)) return false;
    const s = o.settings();
    const cn = cnFromPrefix(p);
    const usable = usableAddresses(parseAddressList(addressText), {
      disabled: s.disabledProtos,
      sameCountry: s.sameCountry,
      myCountry: (f) => o.addresses.country(f),
      lookupCountry: o.lookupCountry,
    });
    o.cache.setTry(p, 1);
    if (usable.length === 0) {
      o.log.debug(`No usable address for ${cn} in ${JSON.stringify(addressText)}`);
      return false;
    }
    try {
      await o.clients.open(p, cn, usable);
    } catch (e) {
      o.log.warn(`Cannot open a tunnel to ${cn}: ${describeError(e)}`);
      o.cache.setTry(p, 0);
      return false;
    }
    this.#sources.set(p, addressText);
    o.onOpened();
    return true;
  }
}
