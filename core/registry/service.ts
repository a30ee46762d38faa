// The running registry service (PROTOCOL.md §4, §5): database, relay, mailer, clean-up timer
// and one log line per request, assembled from parts the caller passes in. The parts that
// touch the machine (listeners, UDP socket, files) live in platform/registry_*.ts and are
// wired by cmd/registry_daemon.ts.

import type { PrivateKey } from "../crypto.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { GeoIp } from "./certificates.ts";
import { type RegistryConfig, resolveRegistryConfig } from "./config.ts";
import type { DbOptions, RegistryDb } from "./db.ts";
import { type ConnectionLimits, RateLimiter } from "./limits.ts";
import type { Mailer } from "./mail.ts";
import type { MethodContext } from "./methods.ts";
import type { Clock } from "../clock.ts";
import { Registry, RegistryFatalError } from "./registry.ts";
import type { RsaEngine } from "./rsa.ts";
import { escapingLogger } from "./sanitize.ts";
import {
  BootstrapCandidates,
  type DatagramSocket,
  Relay,
  type RelayOptions,
  type RoutingView,
} from "./relay.ts";
import { handleRpc, isAuthorizedOrigin, type RpcRequest, type RpcResponse } from "./rpc.ts";

/** Answers one HTTP request of the registry. */
export type RpcHandler = (req: RpcRequest) => Promise<RpcResponse>;

/** HTTP listeners serving a handler. */
export interface HttpListeners {
  /** Port actually bound (the one asked for, or the one chosen for port 0). */
  port: number;
  /** "addr:port" of every listener. */
  listening: string[];
  /** Stops listening and waits for the requests in flight. */
  shutdown(): Promise<void>;
}

/** Group commit of the database: resolves once every committed change is on disk. */
export interface DurableSync {
  sync(): Promise<void>;
  close(): void;
}

/** Limits of the HTTP listeners. */
export interface ListenLimits extends ConnectionLimits {
  /** Addresses exempt from the per-source cap (authorized origins). */
  trusted(address: string): boolean;
}

/** A routing view that may hold a connection to close. */
export type ClosableRoutingView = RoutingView & { close?(): void | Promise<void> };

/** What the registry service needs from the outside world. */
export interface RegistryParts {
  log: Logger;
  clock: Clock;
  /** Reads a file named in the configuration (CA, key, DH parameters, communities). */
  readTextFile(path: string): Promise<string>;
  /** Opens the registry database at `path` (":memory:" in tests). */
  openDatabase(path: string, opts: DbOptions): Promise<RegistryDb>;
  /** The RSA engine for the CA key (default: the built-in code). */
  rsa?: (caKey: PrivateKey) => RsaEngine;
  /** Group commit by fsync of the WAL file at `walPath`; not for ":memory:". */
  openDurableSync(walPath: string): DurableSync;
  /** The UDP socket of the ::1 relay; null when there is none. */
  openRelaySocket(): DatagramSocket | null;
  relayOptions?: RelayOptions;
  /** Reachable node prefixes, for a registry whose database is open. */
  openRoutes(registry: Registry): ClosableRoutingView;
  /** Token mailer from the configuration (--mailhost), or null. */
  openMailer(registry: Registry): Promise<Mailer | null>;
  geoip: GeoIp | null;
  /** Starts serving `handle` on each bind address, all on one port (0: any). */
  listen(
    binds: string[],
    port: number,
    handle: RpcHandler,
    log: Logger,
    limits: ListenLimits,
  ): HttpListeners;
  /** Hears of every answered request and its time in ms (metrics). */
  onRequest?(res: RpcResponse, ms: number): void;
  /** When to say that the node's routes cannot be read (default ROUTES_GRACE_MS; tests). */
  routesGraceMs?: number;
}

/** A started registry. */
export interface RunningRegistry {
  registry: Registry;
  /** Port actually bound (useful with port 0). */
  port: number;
  /** "addr:port" of every listener. */
  listening: string[];
  /** Stops listening, waits for requests in flight, closes the database. */
  stop(): Promise<void>;
  /**
   * Settles when the registry stopped: rejects with the cause when it stopped on its own
   * after a fatal error (e.g. clean-up). The cause is not logged here: the owner reports it.
   */
  finished: Promise<void>;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long after start a registry that cannot read its node's routes says what that means. */
export const ROUTES_GRACE_MS = 15_000;

/** Reads the files, opens the database and starts serving (§4, §5). */
export async function startRegistryService(
  config: RegistryConfig,
  parts: RegistryParts,
): Promise<RunningRegistry> {
  const { clock } = parts;
  const log = escapingLogger(parts.log);
  const resolved = resolveRegistryConfig(config);
  const readOrFail = async (path: string, what: string) => {
    try {
      return await parts.readTextFile(path);
    } catch (cause) {
      throw new Error(`Cannot read ${what} "${path}"`, { cause });
    }
  };
  const material = {
    caPem: await readOrFail(resolved.ca, "CA certificate"),
    keyPem: await readOrFail(resolved.key, "CA key"),
    dhPem: resolved.dh ? await readOrFail(resolved.dh, "DH parameters") : null,
    communities: resolved.community
      ? {
        text: await readOrFail(resolved.community, "communities file"),
        source: resolved.community,
      }
      : undefined,
  };
  const onDisk = resolved.db !== ":memory:";
  const db = await parts.openDatabase(resolved.db, { deferredSync: onDisk });
  const registry = Registry.open(config, material, db, { clock, log, rsa: parts.rsa });
  const durable = onDisk ? parts.openDurableSync(registry.db.path + "-wal") : null;
  const stack: (() => Promise<void> | void)[] = [() => registry.close(), () => durable?.close()];
  const unwind = async () => {
    for (const f of stack.reverse()) {
      try {
        await f();
      } catch (e) {
        log.warn(`Registry shutdown: ${describeError(e)}`);
      }
    }
  };
  try {
    const socket = parts.openRelaySocket();
    if (!socket) log.warn("No UDP socket for the ::1 relay: bootstrap and crawls will answer 204");
    const relay = new Relay(socket, log.child("relay"), parts.relayOptions);
    stack.push(() => relay.close());
    const mailer = await parts.openMailer(registry);
    if (mailer) stack.push(() => mailer.close());
    const routes = parts.openRoutes(registry);
    stack.push(() => routes.close?.());
    // The node on this host usually starts after the registry: judge its babeld a bit later.
    const blindCheck = setTimeout(() => {
      const h = routes.health?.();
      if (!h || h.reachable) return;
      log.warn(
        `Cannot read the routes of this host's node from ${h.source} (${h.problem}): ` +
          "getBootstrapPeer can offer only the registry's own node, and versions and topology " +
          `reach only it. Is --run (${registry.config.run}) the run folder of the node on ` +
          "this host, and is that node running?",
      );
    }, parts.routesGraceMs ?? ROUTES_GRACE_MS);
    stack.push(() => clearTimeout(blindCheck));
    let failed!: (e: Error) => void;
    let stopped!: () => void;
    const finished = new Promise<void>((res, rej) => [stopped, failed] = [res, rej]);
    finished.catch(() => {}); // a caller that never watches it must not crash the process
    /** Why the registry stopped on its own; kept until the stop is over. */
    let fatal: Error | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = () => {
      clearTimeout(timer);
      const next = registry.nextCleanupS();
      if (next === null) return;
      const delay = Math.min(Math.max(next * 1000 - clock.now(), 1000), MAX_TIMER_MS);
      timer = setTimeout(() => {
        registry.exclusive(() => registry.cleanup()).then(schedule, (e) => {
          fatal ??= e instanceof RegistryFatalError
            ? e
            : new Error("Clean-up failed", { cause: e });
          void stop();
        });
      }, delay);
    };
    stack.push(() => clearTimeout(timer));
    schedule();
    const ctx: MethodContext = {
      registry,
      relay,
      routes,
      bootstrap: new BootstrapCandidates(routes, () => clock.now()),
      mailer,
      geoip: parts.geoip,
      changed: schedule,
      durable: durable ? durable.sync : () => Promise.resolve(),
      limiter: new RateLimiter(resolved.rateLimit),
    };
    const c = registry.config;
    const binds = [c.ipv4Bind, c.ipv6Bind].filter((a) => a !== "");
    if (!binds.length) throw new Error("Registry has no address to listen on (-4 and -6 empty)");
    const servers = parts.listen(
      binds,
      c.port,
      loggedHandler(ctx, log, parts.onRequest),
      log.child("http"),
      {
        maxConnections: c.maxConnections,
        maxPerSource: c.maxConnectionsPerSource,
        headerTimeoutMs: c.headerTimeout * 1000,
        idleTimeoutMs: c.idleTimeout * 1000,
        trusted: (address) => isAuthorizedOrigin(c.authorizedOrigin, address, null),
      },
    );
    stack.push(() => servers.shutdown());
    let stopping: Promise<void> | null = null;
    const stop = () => stopping ??= unwind().then(() => fatal ? failed(fatal) : stopped());
    log.info(`Registry listening on ${servers.listening.join(", ")}`);
    // Like every bump (§4.8): the local node fetches the new version and gossips it.
    if (registry.bumpedAtStart && registry.registryPrefix !== null) {
      void relay.notifyNewVersion(registry.registryPrefix);
    }
    return { registry, port: servers.port, listening: servers.listening, stop, finished };
  } catch (e) {
    await unwind();
    throw e;
  }
}

/**
 * The RPC handler with one log line per request: peer, method, status, size, time. Failures
 * of the registry log at error; requests refused for the client's own fault (4xx, 501) at
 * info, or at debug when the refusal was already reported (rate limit).
 */
function loggedHandler(
  ctx: MethodContext,
  log: Logger,
  onRequest?: RegistryParts["onRequest"],
): RpcHandler {
  return async (req) => {
    const t0 = performance.now();
    const res = await handleRpc(ctx, req);
    const elapsed = performance.now() - t0;
    onRequest?.(res, elapsed);
    const ms = elapsed.toFixed(1);
    const line = `${req.peerAddress} ${req.httpMethod} ${res.method ?? "-"} ${res.status} ` +
      `${res.body?.length ?? 0}B ${ms}ms${res.note ? ": " + res.note : ""}`;
    if (res.status >= 500 && res.status !== 501) log.error(line);
    else if (res.quiet) log.debug(line);
    else log.info(line);
    return res;
  };
}
