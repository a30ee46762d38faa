// `re6st registry` as a daemon (PROTOCOL.md §9.3): the registry service wired to the real
// machine (platform/registry_*.ts, libcrypto, the local babeld), signal handlers installed
// before anything else, a log file reopened on SIGUSR1, fatal errors in the log as well as on
// stderr, and the exit code. cmd/registry.ts parses options and calls this.

import { runFile } from "../core/constants.ts";
import { describeError } from "../core/errors.ts";
import { createLogger, type Logger } from "../core/log.ts";
import type { GeoIp } from "../core/registry/certificates.ts";
import {
  type RegistryConfig,
  type ResolvedRegistryConfig,
  resolveRegistryConfig,
} from "../core/registry/config.ts";
import type { Mailer } from "../core/registry/mail.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import type { DatagramSocket, RelayOptions, RoutingView } from "../core/registry/relay.ts";
import { babelRoutingView } from "../core/registry/routes.ts";
import {
  type RegistryParts,
  type RunningRegistry,
  startRegistryService,
} from "../core/registry/service.ts";
import { unixConnector } from "../platform/babel_socket.ts";
import { registryRsa } from "../platform/libcrypto.ts";
import { LogFile } from "../platform/log_file.ts";
import { openRegistryDatabase, prepareLogFolder, walSyncer } from "../platform/registry_files.ts";
import { fdSoftLimit, serveHttp } from "../platform/registry_http.ts";
import { openRelaySocket } from "../platform/registry_listen.ts";
import { registryMailer } from "../platform/registry_mail.ts";
import { type StopSignals, stopSignals } from "./stop_signals.ts";
import type { serveRegistryMetrics } from "./registry_metrics.ts";

export type { RunningRegistry } from "../core/registry/service.ts";

/** Descriptors kept for the database, the log, the relay and the listeners. */
const RESERVED_FDS = 64;

/** What startRegistry takes from the caller instead of the real machine (tests). */
export interface RegistryDeps {
  log?: Logger;
  clock?: Clock;
  /** Opens the IPv6 UDP socket of the relay; null when unavailable. */
  openRelaySocket?: () => DatagramSocket | null;
  relayOptions?: RelayOptions;
  /** Reachable node prefixes (default: the local babeld at `<run>/babeld.sock`). */
  routes?: RoutingView;
  geoip?: GeoIp | null;
  /** Mailer override (tests); default from --mailhost. */
  mailer?: Mailer | null;
  /** libcrypto to load, or "none" (default: RE6ST_LIBCRYPTO, else libcrypto.so.3). */
  libcrypto?: string;
  /**
   * The open-file limit the connection cap must fit (default: this process's soft limit);
   * null: do not fit it (tests of running out of descriptors).
   */
  openFileLimit?: number | null;
  /** Hears of every answered request (the metrics). */
  onRequest?: RegistryParts["onRequest"];
  /** When to say that the node's routes cannot be read (tests). */
  routesGraceMs?: number;
}

/** Starts a registry on this machine: files, database, listeners, relay, local babeld (§4, §5). */
export function startRegistry(
  config: RegistryConfig,
  deps: RegistryDeps = {},
): Promise<RunningRegistry> {
  const log = deps.log ?? createLogger(config.verbose ?? 1, (l) => console.error(l));
  if (deps.geoip === undefined && Deno.env.get("GEOIP2_MMDB")) {
    log.warn("GEOIP2_MMDB is set but this registry has no GeoIP reader: locations ignored");
  }
  const libcrypto = deps.libcrypto ?? Deno.env.get("RE6ST_LIBCRYPTO");
  return startRegistryService(config, {
    log,
    clock: deps.clock ?? systemClock,
    readTextFile: (path) => Deno.readTextFile(path),
    openDatabase: openRegistryDatabase,
    rsa: (caKey) => registryRsa(caKey, libcrypto, log),
    openDurableSync: walSyncer,
    openRelaySocket: deps.openRelaySocket ?? openRelaySocket,
    relayOptions: deps.relayOptions,
    openRoutes(registry) {
      if (deps.routes) return deps.routes;
      const sock = runFile(registry.config.run, "babeldSocket");
      return babelRoutingView(unixConnector(sock), registry.network, log.child("babel"), sock);
    },
    openMailer: (registry) =>
      deps.mailer !== undefined
        ? Promise.resolve(deps.mailer)
        : registryMailer(registry.config, log),
    geoip: deps.geoip ?? null,
    listen(binds, port, handle, httpLog, limits) {
      const fds = deps.openFileLimit === undefined ? fdSoftLimit() : deps.openFileLimit;
      let maxConnections = limits.maxConnections;
      if (fds !== null && maxConnections > fds - RESERVED_FDS) {
        maxConnections = Math.max(1, fds - RESERVED_FDS);
        log.info(
          `At most ${maxConnections} HTTP connections (--max-connections ` +
            `${limits.maxConnections} does not fit the open-file limit of ${fds})`,
        );
      }
      return serveHttp(binds, port, handle, httpLog, { ...limits, maxConnections });
    },
    onRequest: deps.onRequest,
    routesGraceMs: deps.routesGraceMs,
  });
}

/** Where the daemon reports what it cannot log (e.g. the log file cannot be opened). */
export interface DaemonIo {
  err(text: string): void;
}

/**
 * Starts the registry and runs it until SIGTERM/SIGINT (clean stop, 0) or a fatal error (1);
 * SIGUSR1 reopens the log file. A stop signal received while starting (`signals`, listened
 * to by the caller from its first instant) stops the registry once started, with a log line,
 * and exits 0. Returns the exit code.
 */
export async function runRegistryUntilSignal(
  config: RegistryConfig,
  io: DaemonIo,
  deps: RegistryDeps = {},
  signals: StopSignals = stopSignals(),
): Promise<number> {
  let resolved: ResolvedRegistryConfig;
  let logFile: LogFile;
  try {
    resolved = resolveRegistryConfig(config);
    prepareLogFolder(resolved.logfile);
    logFile = new LogFile(resolved.logfile, io, { required: true, mode: 0o640 });
  } catch (e) {
    signals.remove();
    io.err(describeError(e));
    return 1;
  }
  const log = deps.log ?? createLogger(resolved.verbose, (l) => logFile.write(l));
  /** Logs an error and shows it on stderr, once when the log goes there already. */
  const report = (msg: string) => {
    log.error(msg);
    if (deps.log || !logFile.reachesIo) io.err(msg);
  };
  const fatal = (e: Event) => {
    const why = e instanceof ErrorEvent ? e.error : (e as PromiseRejectionEvent).reason;
    report(`Registry stopping on an unexpected error: ${describeError(why)}`);
  };
  globalThis.addEventListener("error", fatal);
  globalThis.addEventListener("unhandledrejection", fatal);
  const onUsr1 = () => {
    if (logFile.reopen()) log.info("Log file reopened (SIGUSR1)");
  };
  Deno.addSignalListener("SIGUSR1", onUsr1);
  // At warning level: why the registry stopped shows at the default verbosity.
  const startingLine = (sig: string) => log.warn(`Received ${sig} while starting: stopping`);
  signals.onSignal = startingLine;
  if (signals.received) startingLine(signals.received);
  let code = 0;
  let metrics: ReturnType<typeof serveRegistryMetrics> | null = null;
  try {
    let running: RunningRegistry;
    try {
      if (resolved.metrics) {
        const { serveRegistryMetrics } = await import("./registry_metrics.ts"); // prom-client when asked
        metrics = serveRegistryMetrics(resolved.metrics, log.child("metrics"));
      }
      running = await startRegistry(resolved, {
        ...deps,
        log,
        onRequest: metrics?.metrics.observe,
      });
      metrics?.attach(running.registry, running.port);
    } catch (e) {
      report(`Cannot start the registry: ${describeError(e)}`);
      return 1;
    }
    signals.onSignal = (sig) => {
      log.warn(`Received ${sig}: stopping`);
      void running.stop();
    };
    if (signals.received) void running.stop();
    try {
      await running.finished;
      log.info("Registry stopped");
    } catch (e) {
      report(`Registry stopped after a fatal error: ${describeError(e)}`);
      code = 1;
    }
  } finally {
    signals.remove();
    Deno.removeSignalListener("SIGUSR1", onUsr1);
    globalThis.removeEventListener("error", fatal);
    globalThis.removeEventListener("unhandledrejection", fatal);
    await metrics?.server.close();
    logFile.close();
  }
  return code;
}
