// One trial of the simulation: a network forms from a cold start, then loses a share of its
// nodes at once (each loss after the previous one healed), and is measured as it goes: when
// every live node is in one component, the hop counts, the tunnel counts against their limits.

import { TUNNEL_TICK_S } from "../../core/constants.ts";
import {
  bfsScratch,
  type Graph,
  type HopHistogram,
  hopHistogram,
  meanHops,
  quantileHops,
} from "./graph.ts";
import { type Random, sample, seeded } from "./rng.ts";
import type { WorldCounters } from "./counters.ts";
import { World, type WorldOptions } from "./world.ts";

/** What a trial runs. */
export interface TrialOptions extends Omit<WorldOptions, "random"> {
  seed: number;
  /** Refresh periods the network runs after the cold start. */
  formPeriods: number;
  /** Refresh periods it runs after each loss. */
  healPeriods: number;
  /** Shares of the live nodes lost at once, one after the other (e.g. [0.1, 0.3]). */
  losses: number[];
  /** Hop counts from every node up to this many live nodes, else from `sources` of them. */
  exactMax: number;
  /** Sources of the sampled hop counts (during phases, and above exactMax). */
  sources: number;
  /** How close to its final value the mean hop count must stay to be settled (relative). */
  settleTolerance: number;
}

/** Hop counts of a graph. */
export interface HopFigures {
  avg: number;
  p99: number;
  /** Largest distance between two nodes (from every node when exact). */
  diameter: number;
  exact: boolean;
  hist: HopHistogram;
}

/** Tunnels per live node: client tunnels (out) and served clients (in). */
export interface Degrees {
  outMean: number;
  outMax: number;
  /** Mean out of the nodes behind a NAT, and of the others. */
  outMeanNat: number;
  outMeanPublic: number;
  inMean: number;
  inMax: number;
  /** Nodes above client_count, above max_clients, and NAT nodes with an incoming tunnel. */
  aboveClientCount: number;
  aboveMaxClients: number;
  natIncoming: number;
}

/** One phase: the cold start, or the time after a loss. */
export interface Phase {
  /** Live nodes. */
  nodes: number;
  /** Refresh periods from the phase start until every live node was in one component. */
  connectedAfter: number | null;
  /** Every live node in one component at the end. */
  connected: boolean;
  /** Refresh periods until the mean hop count stayed within the tolerance of its final value. */
  settlePeriods: number | null;
  /** Mean hop count every half period (sampled; NaN while some pair is unreachable). */
  samples: number[];
  hops: HopFigures;
  degrees: Degrees;
}

/** A loss and what followed it. */
export interface Loss extends Phase {
  share: number;
  killed: number;
  /** Right after the loss: still one component, share of the survivors in the largest one. */
  intact: boolean;
  largestShare: number;
  /** Mean hop count right after the loss, between nodes that still reach each other. */
  hopsRightAfter: number;
}

/** Everything one trial measured. */
export interface TrialResult {
  seed: number;
  formation: Phase;
  losses: Loss[];
  counters: WorldCounters;
  /** Wall-clock seconds the trial took. */
  seconds: number;
}

/** Runs one trial. */
export async function runTrial(o: TrialOptions): Promise<TrialResult> {
  const started = performance.now();
  const random = seeded(o.seed);
  const measureRandom = seeded(o.seed ^ 0x5eed);
  const world = new World({ ...o, random });
  const formation = await runPhase(world, o, o.formPeriods, measureRandom);
  const losses: Loss[] = [];
  for (const share of o.losses) {
    const live = world.live().filter((v) => v !== world.registry);
    const victims = sample(random, live, Math.round(share * (live.length + 1)));
    world.kill(victims);
    const view = world.view();
    const survivors = world.live();
    const largest = Math.max(...view.sizes);
    const right = hops(view.g, survivors, o, measureRandom, false);
    const phase = await runPhase(world, o, o.healPeriods, measureRandom);
    losses.push({
      share,
      killed: victims.length,
      intact: view.sizes.length === 1,
      largestShare: largest / survivors.length,
      hopsRightAfter: right.avg,
      ...phase,
    });
  }
  return {
    seed: o.seed,
    formation,
    losses,
    counters: world.counters,
    seconds: (performance.now() - started) / 1000,
  };
}

async function runPhase(
  world: World,
  o: TrialOptions,
  periods: number,
  random: Random,
): Promise<Phase> {
  const start = world.now;
  const period = o.tunnelRefreshS * 1000;
  const step = TUNNEL_TICK_S * 1000;
  let connectedAt: number | null = world.view().sizes.length === 1 ? start : null;
  const samples: number[] = [];
  const halves = 2 * periods;
  for (let h = 1; h <= halves; h++) {
    const end = start + h * period / 2;
    for (let t = world.now + step; t <= end; t += step) {
      await world.runUntil(t);
      if (connectedAt === null && world.view().sizes.length === 1) connectedAt = t;
    }
    await world.runUntil(end);
    const view = world.view();
    samples.push(view.sizes.length === 1 ? hops(view.g, world.live(), o, random, false).avg : NaN);
  }
  const view = world.view();
  const live = world.live();
  return {
    nodes: live.length,
    connectedAfter: connectedAt === null ? null : (connectedAt - start) / period,
    connected: view.sizes.length === 1,
    settlePeriods: settled(samples, o.settleTolerance),
    samples,
    hops: hops(view.g, live, o, random, live.length <= o.exactMax),
    degrees: degrees(world, live, o),
  };
}

/** Half-periods until every later sample stays within `tol` of the last one, in periods. */
function settled(samples: number[], tol: number): number | null {
  const last = samples.at(-1)!;
  if (!Number.isFinite(last)) return null;
  let k = samples.length - 1;
  while (k > 0 && Math.abs(samples[k - 1] - last) <= tol * last) k--;
  return (k + 1) / 2;
}

function hops(
  g: Graph,
  live: number[],
  o: TrialOptions,
  random: Random,
  exact: boolean,
): HopFigures {
  const sources = exact ? live : sample(random, live, Math.min(o.sources, live.length));
  const hist = hopHistogram(g, live, sources, bfsScratch(g.n));
  return {
    avg: meanHops(hist),
    p99: quantileHops(hist, 0.99),
    diameter: hist.max,
    exact,
    hist,
  };
}

function degrees(world: World, live: number[], o: TrialOptions): Degrees {
  const d: Degrees = {
    outMean: 0,
    outMax: 0,
    outMeanNat: 0,
    outMeanPublic: 0,
    inMean: 0,
    inMax: 0,
    aboveClientCount: 0,
    aboveMaxClients: 0,
    natIncoming: 0,
  };
  let nat = 0;
  for (const v of live) {
    const { out, in: inn } = world.degree(v);
    d.outMean += out;
    d.inMean += inn;
    d.outMax = Math.max(d.outMax, out);
    d.inMax = Math.max(d.inMax, inn);
    if (out > o.clientCount) d.aboveClientCount++;
    if (inn > o.maxClients) d.aboveMaxClients++;
    if (world.nodes[v].nat) {
      nat++;
      d.outMeanNat += out;
      if (inn > 0) d.natIncoming++;
    } else d.outMeanPublic += out;
  }
  d.outMean /= live.length;
  d.inMean /= live.length;
  d.outMeanNat = nat ? d.outMeanNat / nat : NaN;
  d.outMeanPublic = live.length > nat ? d.outMeanPublic / (live.length - nat) : NaN;
  return d;
}
