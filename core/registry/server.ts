// Running registry: HTTP listeners on the IPv4 and IPv6 bind addresses (PROTOCOL.md §4.1),
// the ::1 relay socket, the mailer, the clean-up timer, one log line per request.
//
// This is the one registry file that touches Deno APIs (listeners, files, UDP), each behind
// an overridable member of RegistryDeps.

import { dirname } from "node:path";
import { createLogger, type Logger } from "../log.ts";
import type { GeoIp } from "./certificates.ts";
import type { RegistryConfig } from "./config.ts";
import { type Mailer, mboxMailer, smtpMailer } from "./mail.ts";
import type { MethodContext } from "./methods.ts";
import { type Clock, Registry, RegistryFatalError, systemClock } from "./registry.ts";
import {
  BootstrapCandidates,
  type DatagramSocket,
  NO_ROUTES,
  Relay,
  type RelayOptions,
  type RoutingView,
} from "./relay.ts";
import { babelRoutingView } from "./routes.ts";
import { handleRpc, type RpcRequest } from "./rpc.ts";
import { unixConnector } from "../../platform/babel_socket.ts";

/** What startRegistry needs from the outside world; every member has a Deno default. */
export interface RegistryDeps {
  log?: Logger;
  clock?: Clock;
  readTextFile?: (path: string) => Promise<string>;
  /** Opens the unbound IPv6 UDP socket of the relay; null when unavailable. */
  openRelaySocket?: () => DatagramSocket | null;
  relayOptions?: RelayOptions;
  /** Reachable node prefixes (default: the local babeld at `<run>/babeld.sock`). */
  routes?: RoutingView;
  geoip?: GeoIp | null;
  /** Mailer override (tests); default from --mailhost. */
  mailer?: Mailer | null;
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
  /** Settles when the registry stopped: rejects on a fatal error (e.g. clean-up). */
  finished: Promise<void>;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Reads the files, opens the database and starts serving (§4, §5). */
export async function startRegistry(
  config: RegistryConfig,
  deps: RegistryDeps = {},
): Promise<RunningRegistry> {
  const log = deps.log ?? createLogger(config.verbose ?? 1, (l) => console.error(l));
  const read = deps.readTextFile ?? ((p: string) => Deno.readTextFile(p));
  const readOrFail = async (path: string, what: string) => {
    try {
      return await read(path);
    } catch (cause) {
      throw new Error(`Cannot read ${what} "${path}"`, { cause });
    }
  };
  const material = {
    caPem: await readOrFail(config.ca, "CA certificate"),
    keyPem: await readOrFail(config.key, "CA key"),
    dhPem: config.dh ? await readOrFail(config.dh, "DH parameters") : null,
    communities: config.community
      ? { text: await readOrFail(config.community, "communities file"), source: config.community }
      : undefined,
  };
  if (config.db && config.db !== ":memory:" && !deps.readTextFile) {
    await Deno.mkdir(dirname(config.db), { recursive: true });
  }
  const clock = deps.clock ?? systemClock;
  const onDisk = (config.db ?? "") !== ":memory:";
  const registry = Registry.open(config, material, { clock, log, deferredSync: onDisk });
  const wal = onDisk ? walSyncer(registry.db.path + "-wal") : null;
  const stack: (() => Promise<void> | void)[] = [() => registry.close(), () => wal?.close()];
  const unwind = async () => {
    for (const f of stack.reverse()) {
      try {
        await f();
      } catch (e) {
        log.warn(`Registry shutdown: ${e}`);
      }
    }
  };
  try {
    const socket = (deps.openRelaySocket ?? openUdp6)();
    if (!socket) log.warn("No UDP socket for the ::1 relay: bootstrap and crawls will answer 204");
    const relay = new Relay(socket, log.child("relay"), deps.relayOptions);
    stack.push(() => relay.close());
    const mailer = deps.mailer !== undefined ? deps.mailer : makeMailer(registry, log);
    if (mailer) stack.push(() => mailer.close());
    if (deps.geoip === undefined && Deno.env.get("GEOIP2_MMDB")) {
      log.warn("GEOIP2_MMDB is set but this registry has no GeoIP reader: locations ignored");
    }
    let routes = deps.routes ?? NO_ROUTES;
    if (!deps.routes) {
      const sock = `${registry.config.run}/babeld.sock`;
      const view = babelRoutingView(
        unixConnector(sock),
        registry.network,
        log.child("babel"),
        sock,
      );
      stack.push(() => view.close());
      routes = view;
    }
    let fatal!: (e: Error) => void;
    let stopped!: () => void;
    const finished = new Promise<void>((res, rej) => [stopped, fatal] = [res, rej]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = () => {
      clearTimeout(timer);
      const next = registry.nextCleanupS();
      if (next === null) return;
      const delay = Math.min(Math.max(next * 1000 - clock.now(), 1000), MAX_TIMER_MS);
      timer = setTimeout(() => {
        registry.exclusive(() => registry.cleanup()).then(schedule, (e) => {
          log.error(`${e instanceof RegistryFatalError ? "" : "Clean-up failed: "}${e}`);
          void stop().then(() => fatal(e as Error));
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
      geoip: deps.geoip ?? null,
      changed: schedule,
      durable: wal ? wal.sync : () => Promise.resolve(),
    };
    const servers = listen(registry, ctx, log);
    stack.push(async () => {
      await Promise.all(servers.list.map((s) => s.shutdown()));
    });
    let stopping: Promise<void> | null = null;
    const stop = () => stopping ??= unwind().then(() => stopped());
    log.info(`Registry listening on ${servers.listening.join(", ")}`);
    return { registry, port: servers.port, listening: servers.listening, stop, finished };
  } catch (e) {
    await unwind();
    throw e;
  }
}

/**
 * Group commit: fsyncs the SQLite WAL file off the JS thread; concurrent callers share one
 * fsync, and a caller arriving during an fsync waits for the next one (its commit may have
 * been written after that fsync started).
 */
export function walSyncer(walPath: string): { sync: () => Promise<void>; close(): void } {
  let file: Deno.FsFile | null = null;
  let current: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const once = async () => {
    try {
      file ??= await Deno.open(walPath, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return; // nothing written yet
      throw e;
    }
    await file.syncData();
  };
  const sync = (): Promise<void> => {
    if (!current) {
      current = once().finally(() => current = null);
      return current;
    }
    next ??= current.catch(() => {}).then(() => {
      next = null;
      return sync();
    });
    return next;
  };
  return {
    sync,
    close() {
      file?.close();
      file = null;
    },
  };
}

function openUdp6(): DatagramSocket | null {
  try {
    return Deno.listenDatagram({ transport: "udp", hostname: "::", port: 0 });
  } catch {
    return null;
  }
}

function makeMailer(registry: Registry, log: Logger): Mailer | null {
  const c = registry.config;
  if (!c.mailhost) return null;
  let isFile = c.mailhost.startsWith("/");
  if (!isFile) {
    try {
      isFile = Deno.statSync(c.mailhost).isFile;
    } catch {
      // not a file: an SMTP host
    }
  }
  if (isFile) {
    log.info(`Token mails are appended to mbox "${c.mailhost}"`);
    return mboxMailer(c.mailhost, (path, text) => Deno.writeTextFile(path, text, { append: true }));
  }
  return smtpMailer({
    mailhost: c.mailhost,
    starttls: c.smtpStarttls,
    user: c.smtpUser,
    password: c.smtpPwd,
  });
}

/** Raw request-target of a Deno request: the URL without scheme and authority. */
export function rawTarget(url: string): string {
  const start = url.indexOf("//");
  const slash = url.indexOf("/", start + 2);
  return slash < 0 ? "/" : url.slice(slash);
}

function listen(registry: Registry, ctx: MethodContext, log: Logger) {
  const c = registry.config;
  const binds = [c.ipv4Bind, c.ipv6Bind].filter((a) => a !== "");
  if (!binds.length) throw new Error("Registry has no address to listen on (-4 and -6 empty)");
  const list: Deno.HttpServer<Deno.NetAddr>[] = [];
  const listening: string[] = [];
  let port = c.port;
  const handler = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const t0 = performance.now();
    const rpcReq: RpcRequest = {
      httpMethod: req.method,
      target: rawTarget(req.url),
      header: (n) => req.headers.get(n),
      peerAddress: info.remoteAddr.hostname,
    };
    const res = await handleRpc(ctx, rpcReq);
    const ms = (performance.now() - t0).toFixed(1);
    const line = `${info.remoteAddr.hostname} ${req.method} ${res.method ?? "-"} ${res.status} ` +
      `${res.body?.length ?? 0}B ${ms}ms${res.note ? ": " + res.note : ""}`;
    if (res.status >= 500) log.error(line);
    else if (res.status >= 400) log.warn(line);
    else log.info(line);
    return new Response(res.body as BodyInit | null, { status: res.status, headers: res.headers });
  };
  try {
    for (const hostname of binds) {
      // Both listeners share the port; SO_REUSEPORT lets the IPv4 socket coexist with the
      // dual-stack IPv6 one (Deno cannot set IPV6_V6ONLY), and Linux hands IPv4 connections
      // to the IPv4 socket.
      const server = Deno.serve({
        hostname,
        port,
        reusePort: binds.length > 1,
        onListen() {},
        onError(e) {
          log.error(`HTTP error: ${e}`);
          return new Response(null, { status: 500 });
        },
      }, handler);
      list.push(server);
      port = server.addr.port;
      listening.push(`${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`);
    }
  } catch (e) {
    for (const s of list) void s.shutdown();
    throw new Error(`Cannot listen on port ${port} of ${binds.join(", ")}`, { cause: e });
  }
  return { list, listening, port };
}
