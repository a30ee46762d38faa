// Abuse limits of the registry (issue: attack and scale): the source a limit applies to, the
// per-source rate limit of requestCertificate and requestToken, "say it once a minute", and
// the table of open HTTP connections with its caps and deadlines. Pure: times are passed in
// (milliseconds), the HTTP server in platform/registry_http.ts acts on the answers.

import { unmapIpv4 } from "../addressing.ts";

/** Limits of the HTTP connections. */
export interface ConnectionLimits {
  /** Open connections in total. */
  maxConnections: number;
  /** Open connections per source (sourceKey); 0: no cap per source. */
  maxPerSource: number;
  /** Deadline to receive a request's headers, from the connection or its first byte. */
  headerTimeoutMs: number;
  /** How long a kept-alive connection may wait for its next request (and a reader stall). */
  idleTimeoutMs: number;
}

/**
 * Key of a source address for limits: the IPv4 address, or the /64 of an IPv6 address (one
 * host usually owns a whole /64). IPv4-mapped addresses count as IPv4.
 */
export function sourceKey(address: string): string {
  const a = unmapIpv4(address).toLowerCase();
  if (!a.includes(":")) return a;
  const [head, tail = ""] = a.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = a.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":") + "::/64";
}

/** Remembers when something was last said per key, to say it at most once a minute. */
export class OncePerMinute {
  readonly #last = new Map<string, number>();
  constructor(readonly maxKeys = 4096) {}

  /** Whether to say it now for `key` (true at most once per 60 s per key). */
  due(key: string, nowMs: number): boolean {
    const last = this.#last.get(key);
    if (last !== undefined && nowMs - last < 60_000) return false;
    this.#last.delete(key);
    this.#last.set(key, nowMs);
    if (this.#last.size > this.maxKeys) this.#last.delete(this.#last.keys().next().value!);
    return true;
  }
}

/** Outcome of RateLimiter.take. */
export type RateVerdict = { ok: true } | { ok: false; report: boolean };

/**
 * Token bucket per source: `perMinute` calls, refilled evenly over a minute; a refusal is
 * reported (`report`) once per source and minute. Keeps at most `maxSources` buckets (full
 * ones are forgotten first).
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; atMs: number }>();
  readonly #reports: OncePerMinute;

  constructor(readonly perMinute: number, readonly maxSources = 65536) {
    this.#reports = new OncePerMinute(maxSources);
  }

  /** Takes one call for `source` at `nowMs`. */
  take(source: string, nowMs: number): RateVerdict {
    if (this.perMinute <= 0) return { ok: true };
    let b = this.#buckets.get(source);
    if (b) {
      b.tokens = Math.min(this.perMinute, b.tokens + (nowMs - b.atMs) * this.perMinute / 60_000);
      b.atMs = nowMs;
      this.#buckets.delete(source); // most recently used last
    } else {
      b = { tokens: this.perMinute, atMs: nowMs };
      if (this.#buckets.size >= this.maxSources) this.#forget(nowMs);
    }
    this.#buckets.set(source, b);
    if (b.tokens >= 1) {
      b.tokens--;
      return { ok: true };
    }
    return { ok: false, report: this.#reports.due(source, nowMs) };
  }

  /** Number of sources tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  #forget(nowMs: number): void {
    for (const [k, b] of this.#buckets) {
      if (b.tokens + (nowMs - b.atMs) * this.perMinute / 60_000 >= this.perMinute) {
        this.#buckets.delete(k);
      }
    }
    // Still full of busy sources: drop the least recently used.
    while (this.#buckets.size >= this.maxSources) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
  }
}

type ConnState = "waiting" | "reading" | "busy";

interface Entry {
  source: string;
  state: ConnState;
  /** When it last became waiting (open, or end of a response): the age order of evictions. */
  idleSinceMs: number;
  /** When it will be closed, Infinity while a request is handled. */
  deadlineMs: number;
}

/** What to do with a new connection: close `evict` first, or refuse it (`accept` false). */
export interface OpenVerdict<C> {
  accept: boolean;
  evict: C[];
  /** The source is over its cap (for a log line). */
  overSource: boolean;
}

/**
 * The open connections of an HTTP server: caps in total and per source (the oldest idle
 * connection goes first; a connection handling a request is never evicted) and deadlines
 * (headers, keep-alive idle). `C` is whatever identifies a connection.
 */
export class ConnectionTable<C> {
  readonly #conns = new Map<C, Entry>();
  readonly #bySource = new Map<string, Set<C>>();

  constructor(readonly limits: ConnectionLimits) {}

  /** Number of open connections. */
  get size(): number {
    return this.#conns.size;
  }

  /** Open connections from `source`. */
  countFrom(source: string): number {
    return this.#bySource.get(source)?.size ?? 0;
  }

  /** A new connection from `source` (`trusted`: no per-source cap). */
  open(c: C, source: string, nowMs: number, trusted = false): OpenVerdict<C> {
    const evict: C[] = [];
    const mine = this.#bySource.get(source);
    const { maxConnections, maxPerSource } = this.limits;
    let overSource = false;
    if (!trusted && maxPerSource > 0 && mine && mine.size >= maxPerSource) {
      overSource = true;
      const old = this.#oldestIdle(mine);
      if (old === undefined) return { accept: false, evict, overSource };
      evict.push(old);
    }
    if (this.#conns.size - evict.length >= maxConnections) {
      const old = this.#oldestIdle(this.#conns.keys(), evict);
      if (old === undefined) return { accept: false, evict: [], overSource };
      evict.push(old);
    }
    for (const e of evict) this.close(e);
    this.#conns.set(c, {
      source,
      state: "waiting",
      idleSinceMs: nowMs,
      deadlineMs: nowMs + this.limits.headerTimeoutMs,
    });
    let set = this.#bySource.get(source);
    if (!set) this.#bySource.set(source, set = new Set());
    set.add(c);
    return { accept: true, evict, overSource };
  }

  /** The first bytes of a request arrived: its headers are due within the header deadline. */
  reading(c: C, nowMs: number): void {
    const e = this.#conns.get(c);
    if (!e || e.state !== "waiting") return;
    e.state = "reading";
    e.deadlineMs = Math.min(e.deadlineMs, nowMs + this.limits.headerTimeoutMs);
  }

  /** A request is being handled: no deadline, never evicted. */
  busy(c: C): void {
    const e = this.#conns.get(c);
    if (!e) return;
    e.state = "busy";
    e.deadlineMs = Infinity;
  }

  /** The answer is being written: the reader has the idle timeout to take it. */
  writing(c: C, nowMs: number): void {
    const e = this.#conns.get(c);
    if (e) e.deadlineMs = nowMs + this.limits.idleTimeoutMs;
  }

  /** The answer was sent and the connection is kept alive for the next request. */
  waiting(c: C, nowMs: number): void {
    const e = this.#conns.get(c);
    if (!e) return;
    e.state = "waiting";
    e.idleSinceMs = nowMs;
    e.deadlineMs = nowMs + this.limits.idleTimeoutMs;
  }

  /** Forgets a closed connection (idempotent). */
  close(c: C): void {
    const e = this.#conns.get(c);
    if (!e) return;
    this.#conns.delete(c);
    const set = this.#bySource.get(e.source);
    set?.delete(c);
    if (set?.size === 0) this.#bySource.delete(e.source);
  }

  /** Connections whose deadline passed at `nowMs` (still in the table: close them). */
  expired(nowMs: number): C[] {
    const out: C[] = [];
    for (const [c, e] of this.#conns) if (e.deadlineMs <= nowMs) out.push(c);
    return out;
  }

  /** The connection idle for the longest time, if any (to free a descriptor). */
  oldestIdle(): C | undefined {
    return this.#oldestIdle(this.#conns.keys());
  }

  /** Connections not handling a request. */
  idle(): C[] {
    return [...this.#conns].filter(([, e]) => e.state !== "busy").map(([c]) => c);
  }

  #oldestIdle(conns: Iterable<C>, except: C[] = []): C | undefined {
    let best: C | undefined;
    let since = Infinity;
    for (const c of conns) {
      const e = this.#conns.get(c)!;
      if (e.state !== "busy" && e.idleSinceMs < since && !except.includes(c)) {
        best = c;
        since = e.idleSinceMs;
      }
    }
    return best;
  }
}
