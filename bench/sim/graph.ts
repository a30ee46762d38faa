// The tunnel graph of the simulation as compact arrays: adjacency, connected components,
// breadth-first distances (shortest paths in hops: what Babel routes along when every tunnel
// costs the same), hop-count statistics and the first hop towards every destination.

/** An undirected graph on nodes 0..n-1 in compressed form (each edge listed at both ends). */
export interface Graph {
  readonly n: number;
  /** Edges of node v: `edge[off[v]] .. edge[off[v + 1] - 1]` (edge numbers). */
  readonly off: Int32Array;
  readonly edge: Int32Array;
  /** The other end of each listed edge, parallel to `edge`. */
  readonly to: Int32Array;
}

/** Builds the graph of `n` nodes from edge ends `a[k]`–`b[k]`. */
export function buildGraph(n: number, a: ArrayLike<number>, b: ArrayLike<number>): Graph {
  const m = a.length;
  const deg = new Int32Array(n + 1);
  for (let k = 0; k < m; k++) {
    deg[a[k]]++;
    deg[b[k]]++;
  }
  const off = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) off[v + 1] = off[v] + deg[v];
  const fill = off.slice(0, n);
  const edge = new Int32Array(2 * m);
  const to = new Int32Array(2 * m);
  for (let k = 0; k < m; k++) {
    edge[fill[a[k]]] = k;
    to[fill[a[k]]++] = b[k];
    edge[fill[b[k]]] = k;
    to[fill[b[k]]++] = a[k];
  }
  return { n, off, edge, to };
}

/** Connected components among the nodes where `live` is true: a label per node (-1: dead). */
export function components(
  g: Graph,
  live: ArrayLike<boolean>,
): { label: Int32Array; sizes: number[] } {
  const label = new Int32Array(g.n).fill(-1);
  const sizes: number[] = [];
  const queue = new Int32Array(g.n);
  for (let s = 0; s < g.n; s++) {
    if (!live[s] || label[s] >= 0) continue;
    const c = sizes.length;
    let head = 0, tail = 0;
    queue[tail++] = s;
    label[s] = c;
    while (head < tail) {
      const v = queue[head++];
      for (let k = g.off[v]; k < g.off[v + 1]; k++) {
        const w = g.to[k];
        if (label[w] < 0 && live[w]) {
          label[w] = c;
          queue[tail++] = w;
        }
      }
    }
    sizes.push(tail);
  }
  return { label, sizes };
}

/** Scratch arrays for {@link bfs}, reused across calls. */
export interface BfsScratch {
  dist: Int32Array;
  queue: Int32Array;
}

/** Scratch arrays for a graph of `n` nodes. */
export function bfsScratch(n: number): BfsScratch {
  return { dist: new Int32Array(n), queue: new Int32Array(n) };
}

/**
 * Hop distances from `s` (`dist[v]`, -1 when unreachable); returns the number of nodes
 * reached, `s` included. When `first` is given, `first[v]` is the neighbour of `s` the path
 * to `v` starts with (the first found among equal paths).
 */
export function bfs(g: Graph, s: number, sc: BfsScratch, first?: Int32Array): number {
  const { dist, queue } = sc;
  dist.fill(-1);
  let head = 0, tail = 0;
  queue[tail++] = s;
  dist[s] = 0;
  if (first) first[s] = -1;
  while (head < tail) {
    const v = queue[head++];
    const d = dist[v] + 1;
    for (let k = g.off[v]; k < g.off[v + 1]; k++) {
      const w = g.to[k];
      if (dist[w] >= 0) continue;
      dist[w] = d;
      if (first) first[w] = v === s ? w : first[v];
      queue[tail++] = w;
    }
  }
  return tail;
}

/** Hop counts of pairs: a histogram by distance, unreachable pairs, largest distance seen. */
export interface HopHistogram {
  /** `counts[d]`: ordered pairs at distance d ≥ 1. */
  counts: number[];
  unreachable: number;
  /** Largest distance found (the diameter when every node was a source). */
  max: number;
}

/** An empty histogram. */
export function emptyHistogram(): HopHistogram {
  return { counts: [], unreachable: 0, max: 0 };
}

/** Adds `b` into `a`. */
export function mergeHistogram(a: HopHistogram, b: HopHistogram): void {
  for (let d = 0; d < b.counts.length; d++) a.counts[d] = (a.counts[d] ?? 0) + (b.counts[d] ?? 0);
  a.unreachable += b.unreachable;
  a.max = Math.max(a.max, b.max);
}

/**
 * Distances from each of `sources` to every other node of `among` (live nodes); pairs in
 * different components count as unreachable.
 */
export function hopHistogram(
  g: Graph,
  among: readonly number[],
  sources: readonly number[],
  sc: BfsScratch = bfsScratch(g.n),
): HopHistogram {
  const h = emptyHistogram();
  for (const s of sources) {
    bfs(g, s, sc);
    for (const v of among) {
      if (v === s) continue;
      const d = sc.dist[v];
      if (d < 0) {
        h.unreachable++;
        continue;
      }
      h.counts[d] = (h.counts[d] ?? 0) + 1;
      if (d > h.max) h.max = d;
    }
  }
  return h;
}

/** Mean distance of the reachable pairs of a histogram (NaN when none). */
export function meanHops(h: HopHistogram): number {
  let n = 0, sum = 0;
  for (let d = 0; d < h.counts.length; d++) {
    n += h.counts[d] ?? 0;
    sum += d * (h.counts[d] ?? 0);
  }
  return n ? sum / n : NaN;
}

/** The `q`-quantile (0..1) of the reachable pairs' distances (NaN when none). */
export function quantileHops(h: HopHistogram, q: number): number {
  let n = 0;
  for (const c of h.counts) n += c ?? 0;
  if (!n) return NaN;
  const rank = Math.ceil(q * n);
  let seen = 0;
  for (let d = 0; d < h.counts.length; d++) {
    seen += h.counts[d] ?? 0;
    if (seen >= rank) return d;
  }
  return h.counts.length - 1;
}

/** A random graph where each of `n` nodes opens `k` edges to distinct random others. */
export function randomOutGraph(n: number, k: number, random: () => number): Graph {
  const a: number[] = [], b: number[] = [];
  for (let v = 0; v < n; v++) {
    const chosen = new Set<number>();
    while (chosen.size < Math.min(k, n - 1)) {
      const w = Math.floor(random() * n);
      if (w !== v) chosen.add(w);
    }
    for (const w of chosen) a.push(v), b.push(w);
  }
  return buildGraph(n, a, b);
}
