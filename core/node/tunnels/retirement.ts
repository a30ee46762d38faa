// Tunnel retirement (PROTOCOL.md §7.5, §7.6 codes 2/3, adapted as §8.4.5 suggests, since
// stock babeld has no per-neighbour cost multiplier): which client tunnel to retire each
// tunnel_refresh, and the coordinated removal that follows:
//
// * client side (we own the tap): send code 2 (repeated every 5 s until answered), then drop
//   Babel packets on the tap in both directions: after two hellos each end has lost the
//   other as a neighbour and routes around the tunnel, which still carries the traffic in
//   flight. Once the server answered code 3 and no installed route of ours uses the tap any
//   more (or after 2 × timeout), OpenVPN stops.
// * server side (shared tap): on code 2 from a served client, wait until our installed
//   routes no longer go through that client, then answer code 3. Bounded: 2 × hello when
//   only the client's own prefix is left, `timeout` overall (a reference client does not
//   drain our side).

import type { Bits } from "../../addressing.ts";
import { cnFromPrefix } from "../../addressing.ts";
import type { BabelModel } from "../../babel/model.ts";
import { BABEL_INFINITY } from "../../babel/parse.ts";
import type { BabelSnapshot } from "../../babel/view.ts";
import type { Clock } from "../../clock.ts";
import { Code } from "../../constants.ts";
import { describeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { ClientTunnels } from "./clients.ts";
import { neighboursOriginating, routesThrough, tunnelLimit, tunnelToRetire } from "./policy.ts";

/** Implementation: code 2 is sent again this often until code 3 comes (UDP may lose it). */
const ASK_AGAIN_MS = 5000;

/** One removal in progress. */
export type Removal =
  | {
    side: "client";
    prefix: Bits;
    /** ask: code 2 not sent yet; wait: draining, waiting for code 3. */
    phase: "ask" | "wait";
    /** Code 3 received. */
    agreed: boolean;
    /** The tap could not be drained: close on code 3 without waiting for our routes. */
    undrained?: boolean;
    started: number;
    /** When code 2 was last sent (ms). */
    asked: number;
    deadline: number;
  }
  | {
    side: "server";
    prefix: Bits;
    /** Server taps the client is connected on. */
    ifaces: string[];
    started: number;
  };

/** What removals do to the world. */
export interface RemovalActions {
  /** Drops Babel on our tap to the peer, so that both ends route around it. */
  drain(prefix: Bits): Promise<void>;
  /** Whether none of our installed routes goes through our tunnel to the peer any more. */
  drained(prefix: Bits, snapshot: BabelSnapshot): boolean;
  /** Sends a code to a peer; false when no session (only a hello0 went out). */
  send(prefix: Bits, code: number): boolean;
  /** Closes our client tunnel to the peer. */
  close(prefix: Bits, reason: string): Promise<void>;
}

/** Timing of removals. */
export interface RemovalTiming {
  helloS: number;
  /** 4 × hello. */
  timeoutS: number;
}

/** Removals in progress, by peer prefix. */
export class Removals {
  readonly #m = new Map<Bits, Removal>();

  constructor(
    readonly network: Bits,
    readonly clock: Clock,
    readonly timing: () => RemovalTiming,
    readonly log: Logger,
  ) {}

  get size(): number {
    return this.#m.size;
  }

  has(prefix: Bits): boolean {
    return this.#m.has(prefix);
  }

  get(prefix: Bits): Removal | undefined {
    return this.#m.get(prefix);
  }

  prefixes(): Set<Bits> {
    return new Set(this.#m.keys());
  }

  /** Starts retiring our client tunnel to `prefix` (§7.5); false if one is in progress. */
  startClient(prefix: Bits): boolean {
    if (this.#m.has(prefix)) return false;
    const now = this.clock.now();
    this.#m.set(prefix, {
      side: "client",
      prefix,
      phase: "ask",
      agreed: false,
      started: now,
      asked: 0,
      deadline: now + 2 * this.timing().timeoutS * 1000,
    });
    this.log.info(`Retiring tunnel to ${cnFromPrefix(prefix)}`);
    return true;
  }

  /**
   * Code 2 from `prefix`: honoured only if it is a client of our servers (`ifaces` non-empty)
   * and no removal of it is in progress (§6.5). Returns whether it was honoured.
   */
  onRequest(prefix: Bits, ifaces: string[]): boolean {
    if (ifaces.length === 0 || this.#m.has(prefix)) return false;
    this.#m.set(prefix, { side: "server", prefix, ifaces, started: this.clock.now() });
    this.log.debug(`${cnFromPrefix(prefix)} retires its tunnel to us; draining our routes`);
    return true;
  }

  /** Code 3 from `prefix`: honoured if we asked (§6.5); the tunnel closes once drained. */
  onResponse(prefix: Bits): boolean {
    const r = this.#m.get(prefix);
    if (r?.side !== "client" || r.phase !== "wait") return false;
    r.agreed = true;
    return true;
  }

  /** Forgets the removal of `prefix` (its tunnel went away by itself). */
  abort(prefix: Bits): void {
    this.#m.delete(prefix);
  }

  /** Advances every removal with a fresh Babel snapshot (§7.6, §8.4.5). */
  async advance(snapshot: BabelSnapshot, actions: RemovalActions): Promise<void> {
    const now = this.clock.now();
    const { helloS, timeoutS } = this.timing();
    for (const r of [...this.#m.values()]) {
      if (this.#m.get(r.prefix) !== r) continue;
      const cn = cnFromPrefix(r.prefix);
      if (r.side === "server") {
        const elapsed = now - r.started;
        const left = this.#routesLeft(snapshot, r);
        const done = left.length === 0 ||
          (left.every((p) => p === r.prefix) && elapsed >= 2 * helloS * 1000) ||
          elapsed >= timeoutS * 1000;
        if (!done) continue;
        const sent = actions.send(r.prefix, Code.KILL_RESPONSE);
        if (!sent && elapsed < 2 * timeoutS * 1000) continue; // no session yet: retry
        this.#m.delete(r.prefix);
        this.log.debug(
          `Routes through ${cn} ${left.length ? "still " + left.length : "drained"}; ` +
            (sent ? "told it to close the tunnel" : "cannot tell it (no session)"),
        );
        continue;
      }
      if (now > r.deadline) {
        this.#m.delete(r.prefix);
        await actions.close(r.prefix, "retired (no answer from the peer in time)");
        continue;
      }
      if (r.agreed) {
        if (!r.undrained && !actions.drained(r.prefix, snapshot)) continue;
        this.#m.delete(r.prefix);
        await actions.close(r.prefix, "retired (peer agreed)");
        continue;
      }
      if (r.phase === "ask") {
        if (!actions.send(r.prefix, Code.KILL_REQUEST)) continue; // no session yet: hello0 sent
        r.asked = now;
        try {
          await actions.drain(r.prefix);
        } catch (e) {
          this.log.warn(`Cannot drain the tunnel to ${cn}: ${describeError(e)}; closing it as is`);
          r.undrained = true;
        }
        r.phase = "wait";
      } else if (now - r.asked >= ASK_AGAIN_MS && actions.send(r.prefix, Code.KILL_REQUEST)) {
        r.asked = now;
      }
    }
  }

  #routesLeft(snapshot: BabelSnapshot, r: Extract<Removal, { side: "server" }>): (Bits | null)[] {
    const out: (Bits | null)[] = [];
    for (const key of neighboursOriginating(snapshot, this.network, r.prefix)) {
      const iface = key.slice(key.lastIndexOf("%") + 1);
      if (!r.ifaces.includes(iface)) continue;
      out.push(...routesThrough(snapshot, this.network, key));
    }
    return out;
  }
}

/** What the retirement of one tunnel does to the client tunnels and the peer protocol. */
export function removalActions(
  clients: ClientTunnels,
  send: (prefix: Bits, code: number) => boolean,
  close: (prefix: Bits, reason: string) => Promise<void>,
): RemovalActions {
  return {
    drain: async (p) => {
      const t = clients.get(p);
      if (t) await clients.drain(t);
    },
    drained: (p, snapshot) => {
      const t = clients.get(p);
      return !t ||
        !snapshot.routes.some((r) =>
          r.installed && r.iface === t.iface && r.metric < BABEL_INFINITY
        );
    },
    send,
    close,
  };
}

/** Inputs of {@link tunnelToRetireNow}. */
export interface RetireNow {
  clients: ClientTunnels;
  removals: Removals;
  model: BabelModel;
  /** `--neighbour` peers. */
  keep: ReadonlySet<Bits>;
  clientCount: number;
  /** We serve at least one client. */
  serving: boolean;
  /** We are in the bootstrap back-off (cut off from the registry). */
  backingOff: boolean;
}

/**
 * The tunnel to retire at this tunnel_refresh (§7.5), and how: `close` for a tunnel that never
 * came up, `drain` for a working one (the coordinated removal above), or null.
 */
export function tunnelToRetireNow(i: RetireNow): { prefix: Bits; how: "close" | "drain" } | null {
  const prefix = tunnelToRetire({
    connections: i.clients.list().map((t) => t.prefix),
    removing: i.removals.prefixes(),
    model: i.model,
    keep: i.keep,
    limit: tunnelLimit(i.clientCount, i.serving, i.backingOff),
  });
  if (prefix === null) return null;
  return { prefix, how: i.clients.get(prefix)?.established ? "drain" : "close" };
}
