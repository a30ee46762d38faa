// The registry's UDP relay through its local node on [::1]:326 (PROTOCOL.md §5.8, §6.7):
// requests `<prefix> 0x00 <code>`, answers `<prefix> 0x00 <code> <payload>`.

import { describeError } from "../errors.ts";
import { decodeRelay, encodeRelay } from "../peer/frame.ts";
import { type Bits, cnFromPrefix, prefixFromCn } from "../addressing.ts";
import { BOOTSTRAP_CACHE_S, PEER_PORT, RELAY_TIMEOUT_S } from "../constants.ts";
import type { Logger } from "../log.ts";

/** The part of a Deno.DatagramConn the relay uses (injected; tests pass a real or fake one). */
export interface DatagramSocket {
  send(data: Uint8Array, to: { transport: "udp"; hostname: string; port: number }): Promise<number>;
  receive(): Promise<[Uint8Array, unknown]>;
  close(): void;
}

/** Which node prefixes the local Babel daemon can route to right now (§5.8). */
export interface RoutingView {
  reachablePrefixes(): Promise<Bits[]>;
  /** Whether the routes can be read at all (absent: always). */
  health?(): RoutingHealth;
}

/** Whether the registry reads its node's routes (its log, the `health` method). */
export interface RoutingHealth {
  /** Where the routes come from, e.g. babeld's socket path. */
  source: string;
  reachable: boolean;
  /** Why not, while unreachable. */
  problem: string | null;
}

/** A routing view for when no Babel control socket is available: nothing is reachable. */
export const NO_ROUTES: RoutingView = { reachablePrefixes: () => Promise.resolve([]) };

/** Relay codes used by the registry (§6.5). */
export const CODE = { VERSION: 0, ADDRESS: 1, INFO: 4, TOPOLOGY: 5 } as const;

interface Waiter {
  code: number;
  prefix: Bits | null;
  deliver(prefix: Bits, payload: Uint8Array): void;
}

/** Options of Relay. */
export interface RelayOptions {
  /** Where the local node listens, the only source of answers (default [::1]:326). */
  host?: string;
  port?: number;
  /** Answer deadline of single queries and silence of crawls, ms (default 3000). */
  timeoutMs?: number;
}

const dec = new TextDecoder();

export { decodeRelay, encodeRelay };

/** Host and port of a received datagram's source, when it has them. */
function udpSource(addr: unknown): { hostname: string; port: number } | null {
  if (typeof addr !== "object" || addr === null) return null;
  const { hostname, port } = addr as { hostname?: unknown; port?: unknown };
  return typeof hostname === "string" && typeof port === "number" ? { hostname, port } : null;
}

/**
 * Talks to the local node over UDP and takes answers only from it; every wait ends within the
 * timeout.
 */
export class Relay {
  readonly #socket: DatagramSocket | null;
  readonly #log: Logger;
  readonly #to: { transport: "udp"; hostname: string; port: number };
  readonly timeoutMs: number;
  #waiters = new Set<Waiter>();
  #closed = false;
  #loop: Promise<void> = Promise.resolve();

  /** `socket` null: no relay available, every query times out at once (logged). */
  constructor(socket: DatagramSocket | null, log: Logger, opts: RelayOptions = {}) {
    this.#socket = socket;
    this.#log = log;
    this.#to = { transport: "udp", hostname: opts.host ?? "::1", port: opts.port ?? PEER_PORT };
    this.timeoutMs = opts.timeoutMs ?? RELAY_TIMEOUT_S * 1000;
    if (socket) this.#loop = this.#receiveLoop(socket);
  }

  async #receiveLoop(socket: DatagramSocket): Promise<void> {
    while (!this.#closed) {
      let data: Uint8Array, from: unknown;
      try {
        [data, from] = await socket.receive();
      } catch (e) {
        if (this.#closed) return;
        // ICMP errors from a missing node surface here on some systems: keep listening.
        this.#log.debug(`Relay receive failed: ${describeError(e)}`);
        continue;
      }
      // Answers are unauthenticated: only the local node may give them (§5.8).
      const src = udpSource(from);
      if (src?.hostname !== this.#to.hostname || src.port !== this.#to.port) {
        const who = src ? `[${src.hostname}]:${src.port}` : "an unknown source";
        this.#log.debug(
          `Relay: ignoring a datagram from ${who}: only the local node ` +
            `[${this.#to.hostname}]:${this.#to.port} answers`,
        );
        continue;
      }
      const m = decodeRelay(data);
      if (!m) {
        this.#log.debug(`Relay: ignoring a malformed datagram of ${data.length} bytes`);
        continue;
      }
      for (const w of [...this.#waiters]) {
        if (w.code === m.code && (w.prefix === null || w.prefix === m.prefix)) {
          w.deliver(m.prefix, m.payload);
        }
      }
    }
  }

  async #send(prefix: Bits, code: number): Promise<boolean> {
    if (!this.#socket || this.#closed) return false;
    try {
      await this.#socket.send(encodeRelay(prefix, code), this.#to);
      return true;
    } catch (e) {
      this.#log.warn(
        `Relay to the local node [${this.#to.hostname}]:${this.#to.port} failed (code ${code} ` +
          `for ${prefix}): ${describeError(e)}`,
      );
      return false;
    }
  }

  /** Tells the local node that a new configuration version exists (code 0, no answer). */
  async notifyNewVersion(registryPrefix: Bits): Promise<void> {
    await this.#send(registryPrefix, CODE.VERSION);
  }

  /** Asks `prefix` for `code` and waits for its answer payload; null after the timeout. */
  async query(prefix: Bits, code: number, timeoutMs = this.timeoutMs): Promise<Uint8Array | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let waiter: Waiter | undefined;
    const answer = new Promise<Uint8Array | null>((resolve) => {
      waiter = { code, prefix, deliver: (_p, payload) => resolve(payload) };
      this.#waiters.add(waiter);
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    try {
      if (!await this.#send(prefix, code)) return null;
      return await answer;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(waiter!);
    }
  }

  /**
   * Sends `code` to `start` prefixes and collects answers until `silenceMs` pass with nothing
   * sent or received; `onAnswer` may return more prefixes to ask (crawls). Ends at once when
   * nothing could be sent (no prefix, or no relay socket).
   */
  async crawl(
    code: number,
    start: Bits[],
    onAnswer: (prefix: Bits, payload: Uint8Array) => Bits[],
    silenceMs = this.timeoutMs,
  ): Promise<void> {
    const asked = new Set<Bits>();
    let sent = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => finish = resolve);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, silenceMs);
    };
    const ask = async (prefixes: Bits[]) => {
      for (const p of prefixes) {
        if (asked.has(p)) continue;
        asked.add(p);
        if (await this.#send(p, code)) {
          sent++;
          arm();
        }
      }
    };
    const waiter: Waiter = {
      code,
      prefix: null,
      deliver: (p, payload) => {
        if (!asked.has(p)) return;
        arm();
        void ask(onAnswer(p, payload));
      },
    };
    this.#waiters.add(waiter);
    arm();
    try {
      await ask(start);
      if (sent) await done;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(waiter);
    }
  }

  /** Stops receiving and closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket?.close();
    } catch {
      // already closed
    }
    await this.#loop;
  }
}

/** How long a node offered to an asker is not offered to it again (unless it is the only one). */
export const BOOTSTRAP_REOFFER_S = 600;
/** Askers whose recent offers are remembered (the oldest are forgotten first). */
const BOOTSTRAP_ASKERS_MAX = 10_000;

/**
 * Candidates for getBootstrapPeer: reachable prefixes plus the registry's, shuffled (§5.8).
 * An asker that comes back got no tunnel from what it was offered: it is offered another
 * node, and the same one again only when nothing else is left.
 */
export class BootstrapCandidates {
  #list: Bits[] = [];
  /** Every candidate of the last build. */
  #all: Bits[] = [];
  #expires = 0;
  /** Asker → node → when it was last offered to it (ms). */
  #offered = new Map<Bits, Map<Bits, number>>();
  constructor(
    private readonly routes: RoutingView,
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
  ) {}

  /** How many candidates the list held when last built (the registry's own included). */
  get size(): number {
    return this.#all.length;
  }

  /**
   * One candidate for `asker` (never itself: the registry's node instead), rebuilding the
   * list when empty or older than 60 s.
   */
  async next(registryPrefix: Bits, asker?: Bits): Promise<Bits> {
    const now = this.now();
    if (!this.#list.length || now >= this.#expires) {
      const set = new Set(await this.routes.reachablePrefixes());
      set.add(registryPrefix);
      const list = [...set];
      for (let i = list.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [list[i], list[j]] = [list[j], list[i]];
      }
      this.#list = list;
      this.#all = [...list];
      this.#expires = now + BOOTSTRAP_CACHE_S * 1000;
    }
    if (asker === undefined) return this.#list.pop()!;
    const seen = this.#offered.get(asker) ?? new Map<Bits, number>();
    const fresh = (p: Bits) => (seen.get(p) ?? -Infinity) + BOOTSTRAP_REOFFER_S * 1000 <= now;
    // From the end (what pop() gives): the first one it was not offered lately.
    const i = this.#list.findLastIndex((p) => p !== asker && fresh(p));
    let prefix: Bits;
    if (i >= 0) {
      prefix = this.#list.splice(i, 1)[0];
    } else {
      // Another asker took the rest of the list: any other candidate, else the one offered
      // to this asker longest ago.
      const pool = this.#all.filter((p) => p !== asker);
      prefix = pool.find(fresh) ??
        (pool.length
          ? pool.reduce((a, b) => (seen.get(b) ?? 0) < (seen.get(a) ?? 0) ? b : a)
          : registryPrefix);
    }
    for (const p of [...seen.keys()]) if (fresh(p)) seen.delete(p);
    seen.set(prefix, now);
    this.#offered.delete(asker);
    this.#offered.set(asker, seen);
    if (this.#offered.size > BOOTSTRAP_ASKERS_MAX) {
      this.#offered.delete(this.#offered.keys().next().value!);
    }
    return prefix;
  }
}

/** versions(): prefix → "<version>, <platform>" or null for nodes that did not answer. */
export async function collectVersions(
  relay: Relay,
  prefixes: Bits[],
): Promise<Record<Bits, string | null>> {
  const out: Record<Bits, string | null> = {};
  for (const p of prefixes) out[p] = null;
  await relay.crawl(CODE.INFO, prefixes, (p, payload) => {
    out[p] = dec.decode(payload);
    return [];
  });
  return out;
}

/** topology(): CN → neighbour CNs; "" lists every node that answered (§4.6). */
export async function collectTopology(
  relay: Relay,
  registryPrefix: Bits,
  log: Logger,
): Promise<Record<string, string[]>> {
  const graph = new Map<string, Set<string>>([["", new Set()]]);
  const edge = (from: string, to: string) => {
    if (!graph.has(from)) graph.set(from, new Set());
    graph.get(from)!.add(to);
  };
  await relay.crawl(CODE.TOPOLOGY, [registryPrefix], (p, payload) => {
    const cn = cnFromPrefix(p);
    const [n, ...peers] = dec.decode(payload).trim().split(/\s+/);
    const clients = Number(n);
    if (!Number.isInteger(clients) || clients < 0) {
      log.debug(`Topology: malformed answer from ${cn}`);
      return [];
    }
    graph.get("")!.add(cn);
    if (!graph.has(cn)) graph.set(cn, new Set());
    const next: Bits[] = [];
    peers.forEach((peer, i) => {
      if (i < clients) edge(cn, peer);
      else edge(peer, cn);
      try {
        next.push(prefixFromCn(peer));
      } catch {
        log.debug(`Topology: ${cn} announced an invalid CN ${JSON.stringify(peer)}`);
      }
    });
    return next;
  });
  const out: Record<string, string[]> = {};
  for (const [k, v] of graph) out[k] = [...v];
  return out;
}
