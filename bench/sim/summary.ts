// Figures of many trials of one configuration (size, NAT share): what bench/simulate.ts
// prints and puts in its JSON line.

import {
  emptyHistogram,
  type HopHistogram,
  meanHops,
  mergeHistogram,
  quantileHops,
} from "./graph.ts";
import type { Phase, TrialResult } from "./trial.ts";

/** Mean and largest value of a list (null when empty). */
export interface Spread {
  mean: number;
  max: number;
}

/** Hop counts over every pair of every trial. */
export interface HopSummary {
  avgHops: number;
  p99Hops: number;
  /** Largest diameter of a trial, and the mean of the trials' diameters. */
  diameter: number;
  meanDiameter: number;
}

/** What a loss did, over the trials. */
export interface LossSummary extends HopSummary {
  share: number;
  /** Trials still in one component right after the loss. */
  intactTrials: number;
  /** Mean share of the survivors in the largest component right after the loss. */
  largestShare: number;
  /** Mean hop count right after the loss (between nodes that still reach each other). */
  hopsRightAfter: number;
  /** Trials in one component at the end. */
  healedTrials: number;
  /** Refresh periods until every survivor was in one component again. */
  healPeriods: Spread | null;
  /** Refresh periods until the hop count settled. */
  settlePeriods: Spread | null;
}

/** The figures of one configuration. */
export interface SizeSummary extends HopSummary {
  nodes: number;
  natShare: number;
  trials: number;
  trialsAsked: number;
  connectedTrials: number;
  /** Refresh periods from the cold start until every node was in one component. */
  formPeriods: Spread | null;
  settlePeriods: Spread | null;
  clientCount: number;
  maxClients: number;
  outMean: number;
  outMax: number;
  outMeanPublic: number;
  outMeanNat: number | null;
  inMean: number;
  inMax: number;
  /** Nodes above client_count or max_clients, NAT nodes with incoming tunnels (all trials). */
  aboveClientCount: number;
  aboveMaxClients: number;
  natIncoming: number;
  losses: LossSummary[];
  /** Per node over a trial: hello0 sent, bootstrap peers asked, OpenVPN clients started. */
  hello0PerNode: number;
  bootstrapPerNode: number;
  attemptsPerNode: number;
  /** Share of the OpenVPN clients refused (server full, NAT, dead). */
  refusedShare: number;
  /** Errors logged by the managers (should be 0). */
  errors: number;
  /** Seeds of trials whose graph was not connected at the end of a phase. */
  disconnectedSeeds: number[];
  secondsPerTrial: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function spread(xs: (number | null)[]): Spread | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? { mean: mean(v), max: Math.max(...v) } : null;
}

function hopSummary(phases: Phase[]): HopSummary {
  const h: HopHistogram = emptyHistogram();
  for (const p of phases) mergeHistogram(h, p.hops.hist);
  return {
    avgHops: meanHops(h),
    p99Hops: quantileHops(h, 0.99),
    diameter: Math.max(...phases.map((p) => p.hops.diameter)),
    meanDiameter: mean(phases.map((p) => p.hops.diameter)),
  };
}

/** Sums up the trials of one configuration. */
export function summarize(
  nodes: number,
  natShare: number,
  trialsAsked: number,
  limits: { clientCount: number; maxClients: number },
  results: TrialResult[],
): SizeSummary {
  const f = results.map((r) => r.formation);
  const d = f.map((p) => p.degrees);
  const nat = d.map((x) => x.outMeanNat).filter((x) => Number.isFinite(x));
  const c = results.map((r) => r.counters);
  const lossShares = results[0]?.losses.map((l) => l.share) ?? [];
  const losses = lossShares.map((share, k): LossSummary => {
    const ls = results.map((r) => r.losses[k]);
    return {
      share,
      intactTrials: ls.filter((l) => l.intact).length,
      largestShare: mean(ls.map((l) => l.largestShare)),
      hopsRightAfter: mean(ls.map((l) => l.hopsRightAfter).filter((x) => Number.isFinite(x))),
      healedTrials: ls.filter((l) => l.connected).length,
      healPeriods: spread(ls.map((l) => l.connectedAfter)),
      settlePeriods: spread(ls.map((l) => l.settlePeriods)),
      ...hopSummary(ls),
    };
  });
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    nodes,
    natShare,
    trials: results.length,
    trialsAsked,
    connectedTrials: f.filter((p) => p.connected).length,
    ...hopSummary(f),
    formPeriods: spread(f.map((p) => p.connectedAfter)),
    settlePeriods: spread(f.map((p) => p.settlePeriods)),
    clientCount: limits.clientCount,
    maxClients: limits.maxClients,
    outMean: mean(d.map((x) => x.outMean)),
    outMax: Math.max(...d.map((x) => x.outMax)),
    outMeanPublic: mean(d.map((x) => x.outMeanPublic)),
    outMeanNat: nat.length ? mean(nat) : null,
    inMean: mean(d.map((x) => x.inMean)),
    inMax: Math.max(...d.map((x) => x.inMax)),
    aboveClientCount: sum(
      results.flatMap((r) => [r.formation, ...r.losses].map((p) => p.degrees.aboveClientCount)),
    ),
    aboveMaxClients: sum(
      results.flatMap((r) => [r.formation, ...r.losses].map((p) => p.degrees.aboveMaxClients)),
    ),
    natIncoming: sum(
      results.flatMap((r) => [r.formation, ...r.losses].map((p) => p.degrees.natIncoming)),
    ),
    losses,
    hello0PerNode: mean(c.map((x) => x.hello0)) / nodes,
    bootstrapPerNode: mean(c.map((x) => x.bootstrapAsks)) / nodes,
    attemptsPerNode: mean(c.map((x) => x.attempts)) / nodes,
    refusedShare: sum(c.map((x) => x.refused)) / Math.max(1, sum(c.map((x) => x.attempts))),
    errors: sum(c.map((x) => x.errors)),
    disconnectedSeeds: results
      .filter((r) => !r.formation.connected || r.losses.some((l) => !l.connected))
      .map((r) => r.seed),
    secondsPerTrial: mean(results.map((r) => r.seconds)),
  };
}
