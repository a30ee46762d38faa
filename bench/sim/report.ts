// What bench/simulate.ts prints: tables for people, then one JSON line.

import { table } from "../../tests/netns/report.ts";
import type { LossSummary, SizeSummary, Spread } from "./summary.ts";

/** The run's settings, as the report names them. */
export interface ReportSettings {
  clientCount: number;
  maxClients: number;
  tunnelRefresh: number;
  hello: number;
  formPeriods: number;
  healPeriods: number;
  /** Percent. */
  losses: number[];
  fullTicks: boolean;
  budgetMin: number;
  workers: number;
  seed: number;
}

/** Two decimals, or "-". */
export const f2 = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(2);
const sp = (s: Spread | null) => s ? `${f2(s.mean)} / ${f2(s.max)}` : "never";
const pct = (x: number) => `${Math.round(100 * x)}%`;

/** Prints the tables and, last, the JSON line. */
export function printReport(
  a: ReportSettings,
  ss: SizeSummary[],
  anchors: Map<number, number>,
  seconds: number,
): void {
  const cut = ss.filter((s) => s.trials < s.trialsAsked);
  console.log(
    `\nSimulated overlay: client_count ${a.clientCount}, max_clients ${a.maxClients}, ` +
      `tunnel_refresh ${a.tunnelRefresh} s (= 1 period), hello ${a.hello} s; ` +
      `${a.formPeriods} periods after a cold start, ${a.healPeriods} after each loss`,
  );
  console.log(table([
    [
      "NODES",
      "NAT",
      "TRIALS",
      "CONNECTED",
      "AVG HOPS",
      "RANDOM GRAPH",
      "P99",
      "DIAMETER",
      "OUT mean/max",
      "IN mean/max",
      "ABOVE LIMITS",
      "NAT IN",
      "CONNECTED AFTER",
      "HOPS SETTLED AFTER",
    ],
    ...ss.map((s) => [
      String(s.nodes),
      pct(s.natShare),
      `${s.trials}/${s.trialsAsked}`,
      `${s.connectedTrials}/${s.trials}`,
      f2(s.avgHops),
      f2(anchors.get(s.nodes)),
      String(s.p99Hops),
      `${s.diameter} (mean ${f2(s.meanDiameter)})`,
      `${f2(s.outMean)}/${s.outMax} (≤${s.clientCount})`,
      `${f2(s.inMean)}/${s.inMax} (≤${s.maxClients})`,
      String(s.aboveClientCount + s.aboveMaxClients),
      String(s.natIncoming),
      sp(s.formPeriods),
      sp(s.settlePeriods),
    ]),
  ]));
  console.log(
    "AVG HOPS: mean over every pair of every trial; RANDOM GRAPH: the same size, each node " +
      `${a.clientCount} random edges. Periods: mean / largest.` +
      "\nReference (its random-graph simulation, 10 tunnels each): 1.82 hops at 100 nodes, " +
      "4.15 at 102,400; 5.34 at 102,400 with 5.",
  );
  console.log("\nSudden loss of nodes (the registry's node survives)");
  console.log(table([
    [
      "NODES",
      "NAT",
      "LOSS",
      "INTACT",
      "LARGEST PART",
      "HOPS RIGHT AFTER",
      "HEALED",
      "HEALED AFTER",
      "SETTLED AFTER",
      "AVG HOPS",
      "P99",
      "DIAMETER",
    ],
    ...ss.flatMap((s) =>
      s.losses.map((l: LossSummary) => [
        String(s.nodes),
        pct(s.natShare),
        pct(l.share),
        `${l.intactTrials}/${s.trials}`,
        pct(l.largestShare),
        f2(l.hopsRightAfter),
        `${l.healedTrials}/${s.trials}`,
        sp(l.healPeriods),
        sp(l.settlePeriods),
        f2(l.avgHops),
        String(l.p99Hops),
        String(l.diameter),
      ])
    ),
  ]));
  console.log("\nCost per node over a trial");
  console.log(table([
    ["NODES", "NAT", "HELLO0", "BOOTSTRAP ASKS", "OPENVPN STARTS", "REFUSED", "ERRORS", "S/TRIAL"],
    ...ss.map((s) => [
      String(s.nodes),
      pct(s.natShare),
      f2(s.hello0PerNode),
      f2(s.bootstrapPerNode),
      f2(s.attemptsPerNode),
      pct(s.refusedShare),
      String(s.errors),
      s.secondsPerTrial.toFixed(1),
    ]),
  ]));
  for (const s of ss) {
    if (s.disconnectedSeeds.length) {
      console.log(
        `${s.nodes} nodes, NAT ${pct(s.natShare)}: not connected at the end of a phase in ` +
          `trials with seeds ${s.disconnectedSeeds.slice(0, 10).join(", ")}`,
      );
    }
  }
  if (cut.length) {
    console.log(
      `Fewer trials than asked (budget ${a.budgetMin} min): ` +
        cut.map((s) => `${s.nodes} nodes NAT ${pct(s.natShare)}: ${s.trials}`).join("; "),
    );
  }
  console.log(`Run time ${(seconds / 60).toFixed(1)} min, ${a.workers} workers.`);
  console.log(JSON.stringify({
    bench: "simulate",
    seed: a.seed,
    settings: {
      clientCount: a.clientCount,
      maxClients: a.maxClients,
      tunnelRefreshS: a.tunnelRefresh,
      helloS: a.hello,
      formPeriods: a.formPeriods,
      healPeriods: a.healPeriods,
      losses: a.losses.map((x) => x / 100),
      fullTicks: a.fullTicks,
    },
    anchor: {
      reference: { "100": 1.82, "102400": 4.15, "102400@5": 5.34 },
      randomGraph: Object.fromEntries(anchors),
    },
    sizes: ss,
    seconds,
  }));
}
