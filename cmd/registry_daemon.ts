// `re6st registry` as a daemon (PROTOCOL.md §9.3): the registry service wired to the real
// machine (platform/registry_*.ts, the local babeld), a log file reopened on SIGUSR1, a clean
// stop on SIGTERM and SIGINT, and the exit code. cmd/registry.ts parses options and calls this.

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
import { LogFile } from "../platform/log_file.ts";
import { prepareRegistryDb, registryMailer, walSyncer } from "../platform/registry_files.ts";
import { listenHttp, openRelaySocket } from "../platform/registry_listen.ts";
import type { serveRegistryMetrics } from "./registry_metrics.ts";

export type { RunningRegistry } from "../core/registry/service.ts";

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
  /** Hears of every answered request (the metrics). */
  onRequest?: RegistryParts["onRequest"];
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
  return startRegistryService(config, {
    log,
    clock: deps.clock ?? systemClock,
    readTextFile: (path) => Deno.readTextFile(path),
    prepareDatabase: prepareRegistryDb,
    openDurableSync: walSyncer,
    openRelaySocket: deps.openRelaySocket ?? openRelaySocket,
    relayOptions: deps.relayOptions,
    openRoutes(registry) {
      if (deps.routes) return deps.routes;
      const sock = runFile(registry.config.run, "babeldSocket");
      return babelRoutingView(unixConnector(sock), registry.network, log.child("babel"), sock);
    },
    openMailer: (registry) =>
      deps.mailer !== undefined ? deps.mailer : registryMailer(registry.config, log),
    geoip: deps.geoip ?? null,
    listen: listenHttp,
    onRequest: deps.onRequest,
  });
}

/** Where the daemon reports what it cannot log (e.g. the log file cannot be opened). */
export interface DaemonIo {
  err(text: string): void;
}

/**
 * Starts the registry and runs it until SIGTERM/SIGINT (clean stop, 0) or a fatal error (1);
 * SIGUSR1 reopens the log file. Returns the exit code.
 */
export async function runRegistryUntilSignal(
  config: RegistryConfig,
  io: DaemonIo,
  deps: RegistryDeps = {},
): Promise<number> {
  let resolved: ResolvedRegistryConfig;
  let logFile: LogFile;
  try {
    resolved = resolveRegistryConfig(config);
    logFile = new LogFile(resolved.logfile, io, { required: true });
  } catch (e) {
    io.err(describeError(e));
    return 1;
  }
  const log = deps.log ?? createLogger(resolved.verbose, (l) => logFile.write(l));
  /** Logs an error and shows it on stderr, once when the log goes there already. */
  const report = (msg: string) => {
    log.error(msg);
    if (deps.log || !logFile.reachesIo) io.err(msg);
  };
  let running;
  let metrics: ReturnType<typeof serveRegistryMetrics> | null = null;
  try {
    if (resolved.metrics) {
      const { serveRegistryMetrics } = await import("./registry_metrics.ts"); // prom-client when asked
      metrics = serveRegistryMetrics(resolved.metrics, log.child("metrics"));
    }
    running = await startRegistry(resolved, { ...deps, log, onRequest: metrics?.metrics.observe });
    metrics?.attach(running.registry, running.port);
  } catch (e) {
    report(`Cannot start the registry: ${describeError(e)}`);
    await metrics?.server.close();
    logFile.close();
    return 1;
  }
  const handlers: [Deno.Signal, () => void][] = [];
  const on = (sig: Deno.Signal, fn: () => void) => {
    Deno.addSignalListener(sig, fn);
    handlers.push([sig, fn]);
  };
  const stop = (sig: string) => () => {
    log.info(`Received ${sig}: stopping`);
    void running.stop();
  };
  on("SIGTERM", stop("SIGTERM"));
  on("SIGINT", stop("SIGINT"));
  on("SIGUSR1", () => {
    if (logFile.reopen()) log.info("Log file reopened (SIGUSR1)");
  });
  let code = 0;
  try {
    await running.finished;
    log.info("Registry stopped");
  } catch (e) {
    report(`Registry stopped after a fatal error: ${describeError(e)}`);
    code = 1;
  } finally {
    for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
    await metrics?.server.close();
    logFile.close();
  }
  return code;
}
