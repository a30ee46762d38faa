// The node daemon (PROTOCOL.md §7.1): start-up in the reference order, supervision of its
// children, and a teardown that removes everything it added, whenever it is asked to stop.

import { describeError } from "../errors.ts";
import { RUN_FILES, runFile } from "../constants.ts";
import { buildBabelConfig } from "../babel/config.ts";
import type { BabelClient } from "../babel/local.ts";
import { formatAddressList } from "../addressing.ts";
import type { Logger } from "../log.ts";
import { clientArgs, type CommonArgs, serverArgs, singleClientArgs } from "../openvpn/args.ts";
import type { NodeOptions } from "../options/node.ts";
import type { NodeCache } from "./cache.ts";
import { type Identity, loadIdentity } from "./identity.ts";
import { ServedClients } from "./hooks.ts";
import { controlAnswer } from "./status_document.ts";
import {
  babelInput,
  ipv4State,
  journalFile,
  networkRoute,
  nodeAddress,
  removeLeftovers,
} from "./kernel.ts";
import type { NodeParts } from "./parts.ts";
import { type ChildRecord, claimRunDir } from "./pids.ts";
import {
  type EffectiveSettings,
  effectiveSettings,
  explicitAddresses,
  nodeEnvironment,
} from "./settings.ts";
import { buildStatus } from "./snapshot.ts";
import { errorRing, type NodeState, type NodeStatus, tapErrors } from "./status.ts";
import { type ManagedProcess, supervise, type Supervised } from "./supervisor.ts";
import {
  checkStop,
  type NodeRegistry,
  renewIdentity,
  type SyncContext,
  syncNetworkConfig,
  unlessStopped,
} from "./sync.ts";
import { ensureDh } from "./sync.ts";
import {
  baseTunnels,
  clientModeTunnels,
  combinedTunnels,
  type TunnelContext,
  type TunnelManager,
} from "./tunnels.ts";

/** Why a node's run ended. */
export type NodeExit =
  /** SIGINT/SIGTERM: exit status 0. */
  | { kind: "stopped"; reason: string }
  /** SIGHUP/SIGUSR2: exit status 255 (§7.1). */
  | { kind: "hangup"; reason: string }
  /** The node must start again (renewal, new network parameters, own certificate revoked). */
  | { kind: "restart"; reason: string };

/** Longest single timer wait (setTimeout's limit is 2^31 − 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Renewal attempts in one start-up (each replaces a file and re-checks). */
const MAX_RENEWAL_ROUNDS = 3;

/** One re6st node: `await new Node(options, parts).run()`. */
export class Node {
  readonly options: NodeOptions;
  readonly #p: NodeParts;
  readonly #log: Logger;
  readonly #errors = errorRing();
  readonly #end = new AbortController();
  #exit: NodeExit | null = null;
  #state: NodeState = "starting";
  readonly #startedAt: number;

  // What start-up has brought up so far (teardown undoes exactly these).
  #identity: Identity | null = null;
  #settings: EffectiveSettings | null = null;
  #cache: NodeCache | null = null;
  #registry: NodeRegistry | null = null;
  #record: ChildRecord | null = null;
  #hookServer: { close(): Promise<void> } | null = null;
  #control: { close(): Promise<void> } | null = null;
  #servers: Supervised[] = [];
  #babeld: Supervised | null = null;
  #babel: BabelClient | null = null;
  #tunnels: TunnelManager | null = null;
  #daemons: ManagedProcess[] = [];
  readonly #served: ServedClients;
  #nextRenewal: number | null = null;
  #contact = {
    ok: null as boolean | null,
    at: null as number | null,
    error: null as string | null,
  };

  constructor(options: NodeOptions, parts: NodeParts) {
    this.options = options;
    this.#p = parts;
    this.#log = tapErrors(parts.log, this.#errors, () => parts.clock.now());
    this.#startedAt = parts.clock.now();
    this.#served = new ServedClients(this.#log, () => parts.clock.now());
  }

  /** Asks the node to stop (SIGINT/SIGTERM); start-up is interrupted if still running. */
  stop(reason = "stop requested"): void {
    this.#finish({ kind: "stopped", reason });
  }

  /** Asks the node to stop with status 255 (SIGHUP/SIGUSR2, §7.1). */
  hangup(reason = "hangup"): void {
    this.#finish({ kind: "hangup", reason });
  }

  /** Asks the node to start again from scratch (the reference re-executes itself). */
  restart(reason: string): void {
    this.#finish({ kind: "restart", reason });
  }

  #finish(exit: NodeExit): void {
    if (this.#exit) return;
    this.#exit = exit;
    this.#end.abort();
  }

  /** The node's current state as plain data. */
  status(): NodeStatus {
    return buildStatus({
      state: this.#state,
      pid: this.#p.host.pid,
      startedAt: this.#startedAt,
      options: this.options,
      identity: this.#identity,
      settings: this.#settings,
      cache: this.#cache,
      registryUrl: this.options.registry,
      contact: this.#contact,
      nextRenewal: this.#nextRenewal,
      children: [
        ...(this.#babeld ? [this.#babeld.info()] : []),
        ...this.#servers.map((s) => s.info()),
        ...(this.#tunnels?.children() ?? []),
      ],
      tunnels: this.#tunnels?.tunnels() ?? [],
      served: this.#served.list(),
      babel: this.#babel,
      errors: this.#errors.entries,
    });
  }

  /**
   * Runs the node until it is asked to stop or restart; always tears down what it set up.
   * Throws (after teardown) when start-up fails; the error says what and why in one line.
   */
  async run(): Promise<NodeExit> {
    try {
      await this.#startUp();
      this.#state = "running";
      this.#log.info(
        `Node ${this.#identity!.cn} is up: ${this.#identity!.ip} on ${this.options.mainInterface}`,
      );
      await new Promise<void>((resolve) => {
        if (this.#end.signal.aborted) resolve();
        this.#end.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    } catch (e) {
      // Once a stop was asked for, whatever start-up was doing is abandoned, not an error.
      if (!this.#exit) {
        this.#state = "stopping";
        await this.#teardown();
        this.#state = "stopped";
        throw e;
      }
    }
    this.#state = "stopping";
    this.#log.info(`Stopping: ${this.#exit!.reason}`);
    await this.#teardown();
    this.#state = "stopped";
    return this.#exit!;
  }

  #sync(): SyncContext {
    return {
      registry: this.#registry!,
      cache: this.#cache!,
      clock: this.#p.clock,
      log: this.#log,
      signal: this.#end.signal,
      onContact: (ok, error) => {
        this.#contact = { ok, at: this.#p.clock.now(), error: error ?? null };
      },
    };
  }

  #loadIdentity(): Identity {
    const o = this.options;
    return loadIdentity(
      { ca: o.ca, cert: o.cert, key: o.key },
      this.#p.files.readFile,
      new Date(this.#p.clock.now()),
    );
  }

  async #startUp(): Promise<void> {
    const o = this.options;
    const p = this.#p;
    const log = this.#log;
    const stop = this.#end.signal;

    // 1. Identity.
    let identity = this.#identity = this.#loadIdentity();
    if (identity.expired) {
      log.warn(
        `Certificate ${o.cert} expired on ${identity.cert.notAfter.toISOString()}; ` +
          "asking the registry for a new one",
      );
    }

    // 2. Folders, stale processes, cache, leftovers.
    await p.files.mkdir(o.state, 0o700); // cache.db holds the Babel keys
    await p.files.mkdir(o.log);
    await p.files.mkdir(o.run, 0o700);
    this.#record = await claimRunDir(o.run, p.files, p.host, p.clock, log);
    if (p.serveControl) {
      this.#control = await p.serveControl(
        runFile(o.run, "control"),
        (req) => controlAnswer(req, () => this.status(), () => p.clock.now()),
      );
    }
    checkStop(stop);
    // Before any kernel change: what a killed previous run journaled goes, then this run's
    // changes are journaled in the same file.
    await removeLeftovers(p.platform, journalFile(p.files, runFile(o.run, "kernelJournal")), log);
    const cache = this.#cache = p.openCache(`${o.state}/cache.db`);
    checkStop(stop);

    // 3. Network configuration, then certificate and CA renewal.
    this.#registry = p.registry(identity);
    let params = await syncNetworkConfig(this.#sync(), identity);
    for (let round = 0;; round++) {
      const crl = effectiveSettings(o, params, identity, true).crl;
      const r = await renewIdentity(this.#sync(), p.files, identity, crl);
      this.#nextRenewal = r.nextRenewalMs;
      if (!r.renewed || round >= MAX_RENEWAL_ROUNDS) break;
      identity = this.#identity = this.#loadIdentity();
      this.#registry = p.registry(identity);
    }
    this.#armRenewal();
    params = cache.config();

    // 4-5. Settings, source routing, own address list.
    const sourceRouting = await p.platform.hasSourceRouting();
    const s = this.#settings = effectiveSettings(o, params, identity, sourceRouting);
    for (const w of s.warnings) log.warn(w);
    if (!sourceRouting) log.warn("No IPv6 source routing in this kernel: udp6/tcp6 disabled");
    const own = explicitAddresses(o.ip, s.servers);
    if (own.length) cache.setOwnAddress(formatAddressList(own));
    checkStop(stop);

    // 6. Environment of --up/--daemon.
    const env = nodeEnvironment(identity, o.mainInterface);

    // Hooks come back over a socket in the run folder.
    const hookSocket = runFile(o.run, "hookSocket");
    this.#hookServer = await p.openvpn.serveHooks(hookSocket, (ev) =>
      this.#served.handle(ev, {
        identity: this.#identity,
        settings: this.#settings,
        tunnels: this.#tunnels,
      }));
    const hook = await p.openvpn.writeHookScript(runFile(o.run, "hookScript"), hookSocket);
    const common: CommonArgs = {
      hook,
      path: p.host.path,
      encrypt: s.encrypt,
      hello: s.helloS,
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      extra: o.openvpnArgs,
      ipv4: s.ipv4 ? { address: s.ipv4.address, netmask: s.ipv4.netmask } : undefined,
      logDir: o.ovpnlog ? o.log : undefined,
    };

    // 7. Tunnel manager.
    const ctx: TunnelContext = {
      identity,
      settings: s,
      cache,
      clock: p.clock,
      log,
      openvpn: {
        singleClientArgs: (remotes, iface) => singleClientArgs(common, remotes, iface),
        clientArgs: (iface, remote, peerCn) => clientArgs(common, { iface, remote, peerCn }),
        start: (name, args) => this.#startOpenVpn(name, args),
      },
      served: this.#served.book,
      createTap: async (name) => void await p.platform.createTap(name),
      addRoute: (r) => p.platform.addRoute(r),
      removeRoute: async (r) => void await p.platform.removeRoute(r),
      addBabelInterface: async (name) => {
        const params = buildBabelConfig(babelInput(o, s, identity, [], [])).tunnelParams;
        await this.#babel?.addInterface(name, params);
      },
      requestRestart: (reason) => this.restart(reason),
    };
    // The peer protocol and configuration updates run in every mode (§7.1 step 7); only
    // which tunnels are opened depends on it.
    const peerManager = (p.tunnels ?? baseTunnels)(ctx);
    this.#tunnels = s.clientMode
      ? combinedTunnels(clientModeTunnels(ctx, s.clientMode), peerManager)
      : peerManager;
    const clientTunnels = !s.clientMode && s.clientCount > 0;

    // 8. IPv4 payload.
    if (s.ipv4) {
      const v4 = ipv4State(s.ipv4, o.mainInterface, clientTunnels);
      for (const r of v4.routes) await p.platform.addRoute(r);
      for (const a of v4.addresses) await p.platform.addAddress(a);
      log.info(`IPv4 payload: ${s.ipv4.address}/${s.ipv4.plen} in ${s.ipv4.network}`);
    }
    checkStop(stop);

    // 9. OpenVPN servers (DH from the registry when --dh is absent).
    if (s.servers.length && s.maxClients < 1) {
      log.warn("max_clients is 0: running no OpenVPN server");
    } else if (s.servers.length) {
      const dh = o.dh ?? `${o.state}/dh.pem`;
      if (!o.dh) await ensureDh(this.#sync(), p.files, dh);
      for (const srv of s.servers) {
        await p.platform.createTap(srv.iface);
        const args = serverArgs(common, {
          port: srv.port,
          proto: srv.proto,
          dh,
          maxClients: s.maxClients,
          iface: srv.iface,
        });
        const sup = supervise({
          name: `openvpn ${srv.iface}`,
          start: () => this.#startOpenVpn(srv.iface, args),
          clock: p.clock,
          log,
          onExit: () => this.#served.serverExited(srv.iface, this.#tunnels),
        });
        this.#servers.push(sup);
        await sup.start();
        log.info(`OpenVPN server on ${srv.proto} port ${srv.port} (${srv.iface})`);
        checkStop(stop);
      }
    }
    await this.#tunnels.prepare();
    checkStop(stop);

    // 10. Node address and the network's unreachable route.
    await p.platform.addAddress(nodeAddress(identity, o.mainInterface));
    if (o.mainInterface === "lo") await p.platform.removeLoopbackLinkLocalRoute();
    await p.platform.addRoute(networkRoute(identity));
    checkStop(stop);

    // 11. babeld, supervised, and its local-interface client.
    const taps = [...s.servers.map((x) => x.iface), ...this.#tunnels.interfaces];
    const babelConfig = buildBabelConfig(babelInput(o, s, identity, taps, o.interface));
    this.#babeld = supervise({
      name: "babeld",
      start: () => p.babel.start(babelConfig),
      clock: p.clock,
      log,
      onStarted: (proc) => this.#track(proc, "babeld"),
    });
    await this.#babeld.start();
    checkStop(stop);
    this.#babel = p.babel.client(babelConfig.paths.socket);
    await unlessStopped(this.#babel.waitConnected(), stop);
    await this.#tunnels.start();
    checkStop(stop);

    // 12. --up, then --daemon commands.
    if (o.up !== undefined) {
      log.info(`Running --up command: ${o.up}`);
      const code = await unlessStopped(p.shell.run(o.up, env, stop), stop);
      if (code !== 0) throw new Error(`--up command failed with exit code ${code}: ${o.up}`);
    }
    for (const cmd of o.daemon) {
      const d = p.shell.spawn(cmd, env);
      this.#daemons.push(d);
      this.#track(d, "sh");
      log.info(`Started --daemon command (pid ${d.pid}): ${cmd}`);
      d.exited.then((e) => {
        if (!this.#end.signal.aborted) {
          log.warn(`--daemon command (pid ${d.pid}) exited (code ${e.code}): ${cmd}`);
        }
      });
    }
  }

  /** Starts one OpenVPN process and records its pid for the stale-process check. */
  async #startOpenVpn(name: string, args: readonly string[]): Promise<ManagedProcess> {
    const logFile = this.options.ovpnlog ? `${this.options.log}/${name}.log` : undefined;
    const proc = await this.#p.openvpn.start(name, args, logFile);
    this.#track(proc, "openvpn");
    return proc;
  }

  #track(proc: ManagedProcess, name: string): void {
    const rec = this.#record;
    if (!rec) return;
    rec.add(proc.pid, name).catch(() => {});
    proc.exited.then(() => rec.remove(proc.pid)).catch(() => {});
  }

  /** Restarts the node when the certificate or the CA is due (§7.8). */
  #armRenewal(): void {
    const at = this.#nextRenewal;
    if (at === null) return;
    const clock = this.#p.clock;
    const signal = this.#end.signal;
    (async () => {
      while (!signal.aborted && clock.now() < at) {
        await clock.sleep(Math.min(MAX_TIMER_MS, at - clock.now()), signal);
      }
      if (!signal.aborted) this.restart("certificate or CA renewal is due");
    })();
  }

  /** Stops every child (babeld last), removes every kernel change, the run folder. */
  async #teardown(): Promise<void> {
    const log = this.#log;
    const p = this.#p;
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        log.error(`While stopping: cannot ${what}: ${describeError(e)}`);
      }
    };
    for (const d of this.#daemons.splice(0)) {
      await attempt("stop a --daemon command", () => d.stop());
    }
    if (this.#tunnels) await attempt("stop the tunnels", () => this.#tunnels!.stop());
    await Promise.all(
      this.#servers.map((s) => attempt(`stop ${s.name}`, () => s.stop())),
    );
    if (this.#babel) await attempt("close the babeld client", () => this.#babel!.close());
    if (this.#babeld) await attempt("stop babeld", () => this.#babeld!.stop());
    if (this.#hookServer) await attempt("close the hook socket", () => this.#hookServer!.close());
    await attempt("remove addresses, routes and taps", () => p.platform.undoAll());
    if (this.#control) await attempt("close the control socket", () => this.#control!.close());
    const left = p.platform.changes().length;
    if (this.#record && left) {
      log.warn(
        `Keeping ${this.options.run}: its ${RUN_FILES.kernelJournal} lists ${left} change(s) ` +
          "that could not be undone; the next start removes them",
      );
    } else if (this.#record) {
      await attempt(`remove ${this.options.run}`, () => p.files.remove(this.options.run));
    }
    if (this.#cache) {
      const keep = this.#settings?.clientCount ?? 0;
      const cache = this.#cache;
      this.#cache = null;
      await attempt("shrink and close the cache", () => {
        cache.shrink(keep);
        cache.close();
        return Promise.resolve();
      });
    }
    log.info("Node stopped; every address, route, tap and process it added is gone");
  }
}
