// The simulated network: N nodes, each running the project's own TunnelManager (opening,
// bootstrap, retirement, policy) and hook handling (core/node/hooks.ts), over fakes of what
// lies outside them:
//
// * babeld: shortest-path routing over the established tunnels (views.ts);
// * the peer protocol: a session exists once a hello0 reached the peer over the overlay (the
//   first message to a peer returns false, as the real one does); codes 1, 2 and 3 are
//   delivered between managers when the two nodes are in one component;
// * OpenVPN: a client "connects" at once when the server accepts it (alive, not behind a NAT,
//   fewer than max_clients clients), else its process exits after `refuseDelayS`; a tunnel
//   whose other end died ends after `detectS`;
// * the registry: getBootstrapPeer gives a random live node of the registry node's component;
// * the clock: simulated milliseconds; nodes tick every 5 s (1 s while a removal runs, at once
//   when woken), as TunnelManager.run does.

import { type Bits, bitsFromIp, cnFromPrefix } from "../../core/addressing.ts";
import type { Clock } from "../../core/clock.ts";
import { Code, TUNNEL_TICK_S } from "../../core/constants.ts";
import { createOwnAddresses } from "../../core/node/addresses.ts";
import type { NodeCache } from "../../core/node/cache.ts";
import { handleHook, type HookTargets } from "../../core/node/hooks.ts";
import type { TunnelSettings } from "../../core/node/tunnels/links.ts";
import { TunnelManager } from "../../core/node/tunnels/manager.ts";
import { ServedBook } from "../../core/node/tunnels/served.ts";
import { Agenda } from "./agenda.ts";
import { memoryPeerCache } from "./cache.ts";
import { idleTick } from "./idle.ts";
import { hookEvent, SimProcess } from "./openvpn.ts";
import { countingLogger, newCounters, type WorldCounters } from "./counters.ts";
import { below, type Random, shuffle } from "./rng.ts";
import { destinations, neighbourSnapshot, RoutingView, type SimEdge } from "./views.ts";

/** The re6st network of the simulation: 2001:db8:42::/48. */
export const SIM_NETWORK: Bits = bitsFromIp("2001:db8:42::").slice(0, 48);

/** What a simulated network is made of. */
export interface WorldOptions {
  nodes: number;
  /** Share of nodes behind a NAT (0..1): they open tunnels but nobody can reach them. */
  natShare: number;
  clientCount: number;
  maxClients: number;
  tunnelRefreshS: number;
  helloS: number;
  /** How long a refused or unreachable OpenVPN client runs before it exits, seconds. */
  refuseDelayS: number;
  /** How long a tunnel to a dead node stays up before OpenVPN ends it, seconds. */
  detectS: number;
  /** Nodes start at random times over this many seconds. */
  startSpreadS: number;
  /** Run every tick, even those that provably change nothing (see idle.ts). */
  fullTicks: boolean;
  random: Random;
}

/** One simulated node. */
export interface SimNode {
  readonly i: number;
  readonly prefix: Bits;
  readonly cn: string;
  readonly nat: boolean;
  readonly ip: string;
  readonly addressText: string;
  readonly served: ServedBook;
  readonly cache: NodeCache;
  readonly manager: TunnelManager;
  readonly hooks: HookTargets;
  alive: boolean;
  /** When its next tick is due (ms), -1 when none. */
  nextTick: number;
  /** Peers it has a peer-protocol session with (by node index), made on first use. */
  sessions: Uint8Array | null;
  /** Its OpenVPN client processes, and those of others connected to its server. */
  readonly procs: Set<SimProcess>;
  readonly accepted: Set<SimProcess>;
}

type Task = number | (() => void | Promise<void>);

/** The simulated network. */
export class World {
  readonly nodes: SimNode[] = [];
  readonly registry = 0;
  readonly counters: WorldCounters = newCounters();
  readonly settings: TunnelSettings;
  readonly #o: WorldOptions;
  readonly #random: Random;
  readonly #index = new Map<Bits, number>();
  readonly #byIp = new Map<string, number>();
  readonly #dest: string[];
  readonly #prefixes: Bits[];
  readonly #procs = new Map<number, SimProcess>();
  /** Processes whose tunnel is up: the edges of the routing graph, unless drained. */
  readonly #links = new Set<SimProcess>();
  #t = 0;
  #view: RoutingView | null = null;
  #dirty = true;
  readonly #agenda = new Agenda<Task>();
  readonly #events: (() => void | Promise<void>)[] = [];
  readonly #woken = new Set<number>();
  readonly clock: Clock;

  constructor(o: WorldOptions) {
    this.#o = o;
    this.#random = o.random;
    this.clock = { now: () => this.#t, sleep: () => Promise.resolve() };
    const bits = Math.max(16, Math.ceil(Math.log2(o.nodes + 2)));
    this.#prefixes = Array.from(
      { length: o.nodes },
      (_, i) => (i + 1).toString(2).padStart(bits, "0"),
    );
    this.#dest = destinations(SIM_NETWORK, this.#prefixes);
    this.settings = {
      clientCount: o.clientCount,
      tunnelRefreshS: o.tunnelRefreshS,
      helloS: o.helloS,
      timeoutS: 4 * o.helloS,
      registryPrefix: this.#prefixes[this.registry],
      crl: new Set(),
      disabledProtos: [],
      sameCountry: [],
    };
    // NAT nodes: a random share, never the registry's node.
    const others = shuffle(this.#random, Array.from({ length: o.nodes - 1 }, (_, i) => i + 1));
    const nat = new Set(others.slice(0, Math.round(o.natShare * o.nodes)));
    for (let i = 0; i < o.nodes; i++) this.#addNode(i, nat.has(i));
    for (const n of this.nodes) {
      this.#schedule(n.i, Math.floor(this.#random() * o.startSpreadS) * 1000);
    }
  }

  /** Simulated time since the start (ms). */
  get now(): number {
    return this.#t;
  }

  /** The routing state now (recomputed when a tunnel changed since). */
  view(): RoutingView {
    this.#refresh();
    return this.#view!;
  }

  /**
   * The routing state the nodes see: recomputed between rounds of ticks only, as routes
   * spread after the tunnels changed (and so that a round costs O(N), not O(N²)).
   */
  get #routing(): RoutingView {
    if (!this.#view) this.#refresh();
    return this.#view!;
  }

  #refresh(): void {
    if (!this.#dirty && this.#view) return;
    const edges: SimEdge[] = [];
    for (const p of this.#links) {
      if (p.drained || p.done || p.server === null) continue;
      if (this.nodes[p.owner].alive && this.nodes[p.server].alive) {
        edges.push({ client: p.owner, server: p.server, iface: p.iface });
      }
    }
    const live = this.nodes.map((n) => n.alive);
    this.#view = new RoutingView(this.#prefixes, this.#index, live, edges);
    this.#dirty = false;
  }

  /** Indices of the live nodes. */
  live(): number[] {
    return this.nodes.filter((n) => n.alive).map((n) => n.i);
  }

  /** Established client tunnels (out) and served clients (in) of node `v`. */
  degree(v: number): { out: number; in: number } {
    const n = this.nodes[v];
    return {
      out: n.manager.clients.list().filter((t) => t.established).length,
      in: n.served.size,
    };
  }

  /** Runs the network until `t` (ms). */
  async runUntil(t: number): Promise<void> {
    for (let e = this.#agenda.next(t); e; e = this.#agenda.next(t)) {
      this.#t = e.t;
      await this.#runAt(e.t, e.tasks);
    }
    this.#t = Math.max(this.#t, t);
  }

  /** Kills `victims` at once, as a crash would: no goodbye to anybody. */
  kill(victims: readonly number[]): void {
    const detect = this.#t + this.#o.detectS * 1000;
    for (const v of victims) this.nodes[v].alive = false;
    for (const v of victims) {
      const n = this.nodes[v];
      for (const p of n.procs) {
        const srv = p.server;
        p.end(false);
        this.#procs.delete(p.pid);
        this.#links.delete(p);
        if (srv === null) continue;
        // The server notices the dead client when its OpenVPN times out.
        this.#at(detect, () => {
          this.nodes[srv].accepted.delete(p);
          if (this.nodes[srv].alive) this.#disconnect(srv, n);
        });
      }
      // Clients of the dead node lose their tunnel when OpenVPN times out.
      for (const p of n.accepted) this.#at(detect, () => p.end());
      n.sessions = null;
    }
    for (const n of this.nodes) {
      if (n.sessions) { for (const v of victims) n.sessions[v] = 0; }
    }
    this.#dirty = true;
  }

  // --- Nodes ---

  #addNode(i: number, nat: boolean): void {
    const prefix = this.#prefixes[i];
    const cn = cnFromPrefix(prefix);
    const ip = nat ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : publicIp(i);
    const addressText = `${ip},1194,tcp`;
    this.#index.set(prefix, i);
    this.#byIp.set(ip, i);
    const served = new ServedBook();
    const log = countingLogger(this.counters);
    const random = this.#random;
    const cache = memoryPeerCache(random);
    const hooks: HookTargets = {
      admission: () => ({ ourCn: cn, crl: this.settings.crl, clientMode: false }),
      served,
      serverProtocol: () => "tcp",
      manager: null,
      clientMode: null,
      clock: this.clock,
      log,
    };
    const manager = new TunnelManager({
      network: SIM_NETWORK,
      prefix,
      clock: this.clock,
      log,
      random,
      settings: () => this.settings,
      neighbours: [],
      babel: {
        dump: () => Promise.resolve(this.#snapshot(i)),
        addInterface: () => Promise.resolve(),
      },
      peers: {
        sendTo: (p, code) => this.#send(i, p, code),
        probe: (p) => this.#send(i, p, null),
      },
      cache,
      host: {
        startClient: (iface, remote, peerCn) => this.#startClient(i, iface, remote.ip, peerCn),
        kernel: (state) => {
          // A drained tap leaves the routing (both ends lose each other as neighbours).
          const drained = new Set(state.drained ?? []);
          for (const p of this.nodes[i].procs) {
            if (p.drained !== drained.has(p.iface)) {
              p.drained = drained.has(p.iface);
              this.#dirty = true;
            }
          }
          return Promise.resolve();
        },
      },
      bootstrap: () => this.#bootstrap(i),
      addresses: createOwnAddresses({
        ips: [ip],
        servers: [{ port: 1194, proto: "tcp" }],
        network: SIM_NETWORK,
      }),
      remoteGateways: [],
      babelParams: () => "type tunnel",
      served,
      deriveModel: () => this.#routing.model(i, this.registry, () => this.#routing),
    });
    manager.wake = () => {
      if (this.nodes[i].alive) this.#woken.add(i);
    };
    hooks.manager = manager;
    this.nodes.push({
      i,
      prefix,
      cn,
      nat,
      ip,
      addressText,
      served,
      cache,
      manager,
      hooks,
      alive: true,
      nextTick: -1,
      sessions: null,
      procs: new Set(),
      accepted: new Set(),
    });
  }

  #snapshot(i: number) {
    // Only removals read the routes of a dump; the model comes from deriveModel.
    const view = this.#routing;
    if (this.nodes[i].manager.removals.size === 0) {
      return { interfaces: [], neighbours: [], xroutes: [], routes: [] };
    }
    return neighbourSnapshot(view, i, this.#dest, SIM_NETWORK.length);
  }

  // --- Scheduling ---

  #at(t: number, task: Task): void {
    this.#agenda.at(t, task);
  }

  #schedule(i: number, t: number): void {
    this.nodes[i].nextTick = t;
    this.#at(t, i);
  }

  async #runAt(t: number, tasks: Task[]): Promise<void> {
    let due = new Set<number>(this.#woken);
    this.#woken.clear();
    for (const task of tasks) {
      if (typeof task === "number") {
        if (this.nodes[task].nextTick === t) due.add(task);
      } else await task();
    }
    await this.#drain();
    for (let round = 0; due.size; round++) {
      if (round >= 8) {
        for (const i of due) this.#schedule(i, t + 1000);
        break;
      }
      this.#refresh();
      for (const i of shuffle(this.#random, [...due])) await this.#tick(i);
      await this.#drain();
      due = new Set([...this.#woken].filter((i) => this.nodes[i].alive));
      this.#woken.clear();
    }
  }

  async #drain(): Promise<void> {
    // Events may queue more events: run them in order until none is left.
    for (let k = 0; k < this.#events.length; k++) await this.#events[k]();
    this.#events.length = 0;
  }

  async #tick(i: number): Promise<void> {
    const n = this.nodes[i];
    if (!n.alive) return;
    const idle = this.#o.fullTicks ? null : idleTick({
      node: n,
      view: this.#routing,
      settings: this.settings,
      registry: this.registry,
      now: this.#t,
    });
    if (idle) {
      // What the tick would have done: keep the session with the registry's node up.
      if (idle.probeRegistry) this.#send(i, this.settings.registryPrefix!, null);
      this.counters.skipped++;
    } else {
      this.counters.ticks++;
      try {
        await n.manager.tick();
      } catch (e) {
        this.counters.errors++;
        this.counters.messages.push(`tick of ${n.cn} threw: ${e}`);
      }
    }
    this.#schedule(i, this.#t + (n.manager.removals.size ? 1000 : TUNNEL_TICK_S * 1000));
  }

  // --- Peer protocol ---

  #sessions(i: number): Uint8Array {
    return this.nodes[i].sessions ??= new Uint8Array(this.nodes.length);
  }

  #send(i: number, p: Bits, code: number | null): boolean {
    const j = this.#index.get(p);
    if (j === undefined || j === i || !this.nodes[j].alive || !this.nodes[i].alive) return false;
    const reach = this.#routing.connected(i, j);
    const s = this.#sessions(i);
    if (!s[j]) {
      // A hello0 that reaches the peer starts the session; without a route it is not sent.
      if (reach) {
        s[j] = 1;
        this.#sessions(j)[i] = 1;
        this.counters.hello0++;
      }
      return false;
    }
    if (code !== null && reach) this.#events.push(() => this.#deliver(i, j, code));
    return true;
  }

  async #deliver(from: number, to: number, code: number): Promise<void> {
    const a = this.nodes[from], b = this.nodes[to];
    if (!a.alive || !b.alive) return;
    if (code === Code.ADDRESS) await a.manager.onAddress(b.prefix, b.addressText);
    else if (code === Code.KILL_REQUEST) b.manager.onKillRequest(a.prefix);
    else if (code === Code.KILL_RESPONSE) b.manager.onKillResponse(a.prefix);
  }

  // --- Registry ---

  #bootstrap(i: number): Promise<{ prefix: Bits; addresses: string }> {
    this.counters.bootstrapAsks++;
    const reg = this.nodes[this.registry];
    if (!reg.alive) return Promise.reject(new Error("the registry does not answer"));
    const view = this.#routing;
    const members = view.members(view.label[this.registry]);
    let pick = members[below(this.#random, members.length)];
    if (pick === i) pick = this.registry;
    const n = this.nodes[pick];
    return Promise.resolve({ prefix: n.prefix, addresses: n.addressText });
  }

  // --- OpenVPN ---

  #startClient(i: number, iface: string, remoteIp: string, peerCn: string): Promise<SimProcess> {
    const n = this.nodes[i];
    const proc = new SimProcess(i, iface, (p, stopped) => this.#ended(p, stopped));
    this.#procs.set(proc.pid, proc);
    n.procs.add(proc);
    this.counters.attempts++;
    const j = this.#byIp.get(remoteIp);
    const srv = j === undefined ? undefined : this.nodes[j];
    const room = srv && srv.alive && !srv.nat && srv.served.entries().length < this.#o.maxClients;
    const answer = room
      ? handleHook(hookEvent("client-connect", n, this.#t), srv.hooks)
      : undefined;
    if (srv && answer?.accept) {
      proc.server = srv.i;
      srv.accepted.add(proc);
      this.#events.push(async () => {
        if (proc.done || !n.alive) return;
        await n.manager.routeUp({
          type: "route-up",
          dev: iface,
          commonName: peerCn,
          serial: BigInt(srv.i + 1),
          time: Math.floor(this.clock.now() / 1000),
        });
        const t = n.manager.clients.byIface(iface);
        if (!proc.done && t?.established && t.process.pid === proc.pid) {
          proc.up = true;
          this.#links.add(proc);
          this.#dirty = true;
        }
      });
    } else {
      this.counters.refused++;
      this.#at(this.#t + this.#o.refuseDelayS * 1000, () => proc.end());
    }
    return Promise.resolve(proc);
  }

  /** A client process ended: its server (if alive) sees the client leave. */
  #ended(p: SimProcess, stopped: boolean): void {
    const n = this.nodes[p.owner];
    if (stopped && p.up) this.counters.closed++;
    n.procs.delete(p);
    this.#procs.delete(p.pid);
    this.#links.delete(p);
    this.#dirty = true;
    if (p.server === null) return;
    const srv = this.nodes[p.server];
    srv.accepted.delete(p);
    if (srv.alive) this.#disconnect(srv.i, n);
  }

  #disconnect(server: number, client: SimNode): void {
    handleHook(hookEvent("client-disconnect", client, this.#t), this.nodes[server].hooks);
  }
}

/** A public IPv4 address for node `i` (outside private ranges). */
function publicIp(i: number): string {
  return `11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}
