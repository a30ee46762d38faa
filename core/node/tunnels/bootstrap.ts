// Bootstrap (PROTOCOL.md §7.3, §7.5): how a node that has no route to the registry finds the
// network. It tries the peers of its cache first, then asks the registry for a bootstrap
// peer; an island (it knows nodes, but not the registry) forces one tunnel towards a node the
// registry gives. Attempts back off by a random multiple of the timeout, and a registry that
// keeps offering a peer whose tunnel just failed (a full node) is asked less and less often.

import { type Bits, cnFromPrefix } from "../../addressing.ts";
import type { Clock } from "../../clock.ts";
import { BOOTSTRAP_BACKOFF_MAX_S, TUNNEL_TICK_S } from "../../constants.ts";
import { describeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { BootstrapPeer } from "../../registry/client.ts";
import type { NodeCache } from "../cache.ts";

/** What bootstrapping needs. */
export interface BootstrapOptions {
  prefix: Bits;
  clock: Clock;
  log: Logger;
  random: () => number;
  cache: NodeCache;
  /** The registry's getBootstrapPeer (§7.3). */
  ask(): Promise<BootstrapPeer | null>;
  /** Opens a client tunnel (manager.ts makeTunnel); true when started. */
  makeTunnel(p: Bits, addressText: string): Promise<boolean>;
  /** Whether our tunnel to `p` failed (or was retired) recently (opening.ts avoid). */
  failedRecently(p: Bits): boolean;
}

/** Bootstrap state of one node. */
export class Bootstrap {
  readonly #o: BootstrapOptions;
  /** 0, or the time (ms) before which we do not bootstrap again. */
  #until = 0;
  /** getBootstrapPeer is asked at most once per tick interval, less often after refusals. */
  #nextAsk = 0;
  /** Offers in a row of a peer whose tunnel had just failed. */
  #refused = 0;

  constructor(o: BootstrapOptions) {
    this.#o = o;
  }

  /** Cut off from the registry and backing off (the node then keeps client_count tunnels). */
  get backingOff(): boolean {
    return this.#until !== 0;
  }

  /** The registry is reachable again: the back-off ends. */
  reached(): void {
    this.#until = 0;
  }

  /**
   * Cut off from the registry: true when it is time for an attempt, which arms the next
   * back-off: timeout × (1 + a random number up to the number of known nodes) (§7.5).
   */
  due(known: number, timeoutS: number): boolean {
    const now = this.#o.clock.now();
    if (this.#until >= now) return false;
    const n = Math.floor(this.#o.random() * (known + 1));
    this.#until = now + timeoutS * 1000 * (1 + n);
    return true;
  }

  /**
   * An island forces a tunnel towards a bootstrap peer outside `known`. Returns "opened",
   * "silent" when the registry did not answer (the island keeps using its distant peers), or
   * "none".
   */
  async island(known: ReadonlySet<Bits>): Promise<"opened" | "silent" | "none"> {
    const bp = await this.ask();
    if (bp === undefined) return "silent";
    if (bp && !known.has(bp.prefix) && await this.#o.makeTunnel(bp.prefix, bp.addresses)) {
      return "opened";
    }
    return "none";
  }

  /**
   * Mode "cache" of §7.5: up to `count` tunnels to cached peers Babel does not know; with
   * nothing known and nothing cached, a bootstrap peer from the registry (never asked by the
   * registry node); last resort, peers whose last attempt failed.
   */
  async fromCache(count: number, known: ReadonlySet<Bits>, isRegistry: boolean): Promise<void> {
    const o = this.#o;
    const cached = o.cache.peers({ exclude: o.prefix });
    let opened = 0;
    for (const { prefix, address } of cached) {
      if (known.has(prefix)) continue;
      if (await o.makeTunnel(prefix, address) && ++opened >= count) return;
    }
    if (opened > 0 || known.size > 0) return;
    if (cached.length === 0 && !isRegistry) {
      const bp = await this.ask();
      if (bp && await o.makeTunnel(bp.prefix, bp.addresses)) return;
    }
    for (const { prefix, address } of o.cache.peers({ tried: 1, exclude: o.prefix })) {
      if (await o.makeTunnel(prefix, address)) return;
    }
  }

  /** getBootstrapPeer (§7.3): the peer (added to the cache), null if none, undefined on error. */
  async ask(): Promise<BootstrapPeer | null | undefined> {
    const o = this.#o;
    const now = o.clock.now();
    if (now < this.#nextAsk) return null;
    this.#nextAsk = now + TUNNEL_TICK_S * 1000;
    let bp: BootstrapPeer | null;
    try {
      bp = await o.ask();
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
    if (o.failedRecently(bp.prefix)) {
      const waitS = Math.min(BOOTSTRAP_BACKOFF_MAX_S, TUNNEL_TICK_S * 2 ** ++this.#refused);
      this.#nextAsk = now + waitS * 1000;
      o.log.info(
        `The registry offered ${cnFromPrefix(bp.prefix)} again, whose tunnel failed us just ` +
          `before (a full node?); asking for another bootstrap peer in ${waitS} s`,
      );
      return null;
    }
    this.#refused = 0;
    o.log.info(`Bootstrap peer from the registry: ${cnFromPrefix(bp.prefix)}`);
    if (bp.addresses) o.cache.addPeer(bp.prefix, bp.addresses);
    return bp;
  }
}
