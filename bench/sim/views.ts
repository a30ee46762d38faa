// What each simulated node's babeld would report, derived from the tunnel graph instead of
// Babel: shortest-path routing over established tunnels. A node's neighbours are the other
// ends of its tunnels, its known nodes are the nodes of its connected component, and the
// routes through a neighbour are the destinations whose shortest path starts there.
//
// The sets are lazy views of the component (ten thousand nodes each building a Set of ten
// thousand prefixes every five seconds would dominate the run); they answer has, size and
// iteration like the Sets core/babel/model.ts builds.

import { type Bits, ipFromBits } from "../../core/addressing.ts";
import type { BabelModel, NeighbourRoutes } from "../../core/babel/model.ts";
import type { BabelRoute } from "../../core/babel/parse.ts";
import type { BabelSnapshot } from "../../core/babel/view.ts";
import { bfs, bfsScratch, buildGraph, components, type Graph } from "./graph.ts";

/** Tap of every simulated node's one OpenVPN server. */
export const SERVER_DEV = "re6stnet-tcp";

/** Link-local address of node `v` as a Babel neighbour. */
export function linkLocal(v: number): string {
  return `fe80::${(v + 1).toString(16)}`;
}

/** One established, undrained tunnel: client node, server node, the client's tap. */
export interface SimEdge {
  client: number;
  server: number;
  iface: string;
}

/** The routing state of the whole network at one moment. */
export class RoutingView {
  readonly g: Graph;
  /** Component of each node (-1: dead). */
  readonly label: Int32Array;
  readonly sizes: number[];
  readonly #edges: readonly SimEdge[];
  readonly #members = new Map<number, number[]>();
  readonly #routes = new Map<number, Map<number, Bits[]>>();
  readonly #near = new Map<number, Map<number, string>>();
  #scratch: ReturnType<typeof bfsScratch> | null = null;

  constructor(
    readonly prefixes: readonly Bits[],
    readonly index: ReadonlyMap<Bits, number>,
    live: ArrayLike<boolean>,
    edges: readonly SimEdge[],
  ) {
    this.#edges = edges;
    this.g = buildGraph(prefixes.length, edges.map((e) => e.client), edges.map((e) => e.server));
    const c = components(this.g, live);
    this.label = c.label;
    this.sizes = c.sizes;
  }

  /** Whether `a` and `b` are alive and in one component. */
  connected(a: number, b: number): boolean {
    return this.label[a] >= 0 && this.label[a] === this.label[b];
  }

  /** Size of `v`'s component (0 when dead). */
  componentSize(v: number): number {
    return this.label[v] >= 0 ? this.sizes[this.label[v]] : 0;
  }

  /** Nodes of component `c`, in index order. */
  members(c: number): number[] {
    let m = this.#members.get(c);
    if (!m) {
      m = [];
      for (let v = 0; v < this.label.length; v++) if (this.label[v] === c) m.push(v);
      this.#members.set(c, m);
    }
    return m;
  }

  /** Distinct tunnel neighbours of `v`, each with the tap the tunnel uses on `v`'s side. */
  neighbours(v: number): Map<number, string> {
    let out = this.#near.get(v);
    if (out) return out;
    out = new Map<number, string>();
    this.#near.set(v, out);
    const g = this.g;
    for (let k = g.off[v]; k < g.off[v + 1]; k++) {
      const w = g.to[k];
      if (out.has(w)) continue;
      const e = this.#edges[g.edge[k]];
      out.set(w, e.client === v ? e.iface : SERVER_DEV);
    }
    return out;
  }

  /** Destinations (prefixes) `v` routes through each neighbour, the neighbour included. */
  routesFrom(v: number): Map<number, Bits[]> {
    let r = this.#routes.get(v);
    if (r) return r;
    const sc = this.#scratch ??= bfsScratch(this.g.n);
    const first = new Int32Array(this.g.n);
    bfs(this.g, v, sc, first);
    r = new Map();
    for (let w = 0; w < this.g.n; w++) {
      if (w === v || sc.dist[w] < 0) continue;
      const via = first[w];
      let list = r.get(via);
      if (!list) r.set(via, list = []);
      list.push(this.prefixes[w]);
    }
    this.#routes.set(v, r);
    return r;
  }

  /**
   * The §7.4 model node `v` derives from its Babel dump: its neighbours (with their routes,
   * computed when first read), and its component as known and distant nodes. The model reads
   * the routing of `current()` (this view while the tick runs): a model kept by a manager
   * after its tick must not keep an old view, and its graph, alive.
   */
  model(v: number, registry: number, current: () => RoutingView): BabelModel {
    const near = this.neighbours(v);
    const neighbours = new Map<Bits, NeighbourRoutes>();
    for (const [w, iface] of near) {
      neighbours.set(this.prefixes[w], neighbourRoutes(current, v, w, iface));
    }
    const knownNodes = new ComponentSet(current, v, new Set());
    return {
      routesVia: new Map(),
      neighbours,
      unidentified: null,
      knownNodes,
      distantNodes: new ComponentSet(current, v, new Set(near.keys())),
      buggy: new Map(),
      registryReachable: this.connected(v, registry) && v !== registry,
    };
  }
}

/** Neighbour `w` of `v`, its routes computed when first read. */
function neighbourRoutes(
  current: () => RoutingView,
  v: number,
  w: number,
  iface: string,
): NeighbourRoutes {
  let routes: Map<Bits | null, BabelRoute> | undefined;
  return {
    neighbour: { address: linkLocal(w), iface },
    get routes() {
      routes ??= new RouteKeys(current().routesFrom(v).get(w) ?? []);
      return routes;
    },
  };
}

/**
 * The routes through one neighbour, by destination: the retirement policy only counts their
 * keys, so the keys are the destinations and every value is {@link ROUTE}.
 */
class RouteKeys extends Map<Bits | null, BabelRoute> {
  readonly #keys: readonly Bits[];
  constructor(keys: readonly Bits[]) {
    super();
    this.#keys = keys;
    Object.defineProperty(this, "size", { get: () => keys.length });
  }
  override keys(): MapIterator<Bits | null> {
    return this.#keys.values() as unknown as MapIterator<Bits | null>;
  }
  override has(k: Bits | null): boolean {
    return k !== null && this.#keys.includes(k);
  }
  override get(k: Bits | null): BabelRoute | undefined {
    return this.has(k) ? ROUTE : undefined;
  }
  override entries(): MapIterator<[Bits | null, BabelRoute]> {
    return this.#keys.map((k): [Bits | null, BabelRoute] => [k, ROUTE])
      .values() as unknown as MapIterator<
        [Bits | null, BabelRoute]
      >;
  }
  override [Symbol.iterator](): MapIterator<[Bits | null, BabelRoute]> {
    return this.entries();
  }
  override values(): MapIterator<BabelRoute> {
    return this.#keys.map(() => ROUTE).values() as unknown as MapIterator<BabelRoute>;
  }
  override forEach(
    fn: (v: BabelRoute, k: Bits | null, m: Map<Bits | null, BabelRoute>) => void,
  ): void {
    for (const k of this.#keys) fn(ROUTE, k, this);
  }
}

/** Stands for every route a lazy neighbour entry lists (the policy counts them only). */
const ROUTE: BabelRoute = {
  id: "sim",
  prefix: "::",
  plen: 0,
  from: "::",
  fromPlen: 0,
  installed: true,
  routerId: "0:0:0:0:0:0:0:0",
  metric: 96,
  refmetric: 96,
  via: "fe80::",
  iface: SERVER_DEV,
};

/** The nodes of `self`'s component except `self` and `except`, as a read-only Set. */
class ComponentSet extends Set<Bits> {
  readonly #current: () => RoutingView;
  readonly #self: number;
  readonly #except: ReadonlySet<number>;

  constructor(current: () => RoutingView, self: number, except: ReadonlySet<number>) {
    super();
    this.#current = current;
    this.#self = self;
    this.#except = except;
    Object.defineProperty(this, "size", {
      get: () => Math.max(0, current().componentSize(self) - 1 - except.size),
    });
  }

  override has(p: Bits): boolean {
    const view = this.#current();
    const w = view.index.get(p);
    return w !== undefined && w !== this.#self && !this.#except.has(w) &&
      view.connected(this.#self, w);
  }

  #list(): Bits[] {
    const view = this.#current();
    const c = view.label[this.#self];
    if (c < 0) return [];
    const out: Bits[] = [];
    for (const w of view.members(c)) {
      if (w !== this.#self && !this.#except.has(w)) out.push(view.prefixes[w]);
    }
    return out;
  }

  override [Symbol.iterator](): SetIterator<Bits> {
    return this.#list().values() as unknown as SetIterator<Bits>;
  }

  override values(): SetIterator<Bits> {
    return this[Symbol.iterator]();
  }

  override keys(): SetIterator<Bits> {
    return this[Symbol.iterator]();
  }

  override forEach(fn: (v: Bits, k: Bits, s: Set<Bits>) => void): void {
    for (const p of this.#list()) fn(p, p, this);
  }
}

/** Destination text of each node's prefix, made once. */
export function destinations(network: Bits, prefixes: readonly Bits[]): string[] {
  return prefixes.map((p) => ipFromBits(network + p));
}

/**
 * The routes of `v`'s dump that the retirement code reads: one originated route per tunnel
 * neighbour, on the tap of that tunnel. (Routes to farther nodes through a tunnel vanish
 * with it, so they change nothing in when a drained tunnel counts as drained.)
 */
export function neighbourSnapshot(
  view: RoutingView,
  v: number,
  dest: readonly string[],
  networkLength: number,
): BabelSnapshot {
  const routes: BabelRoute[] = [];
  for (const [w, iface] of view.neighbours(v)) {
    routes.push({
      ...ROUTE,
      id: `${v}-${w}`,
      prefix: dest[w],
      plen: networkLength + view.prefixes[w].length,
      refmetric: 0,
      via: linkLocal(w),
      iface,
    });
  }
  return { interfaces: [], neighbours: [], xroutes: [], routes };
}
