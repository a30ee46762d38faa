/**
 * The overlay at scale, simulated (no root, no network): N nodes, each running the project's
 * own TunnelManager — opening, bootstrap, retirement and policy, the code a node runs — over
 * shortest-path routing instead of babeld, a fake peer protocol, fake OpenVPN clients and a
 * registry that offers a random live node (bench/sim/world.ts says what is faked and how).
 *
 * Each trial: a cold start (every node starts within 5 s, bootstraps from the registry), a
 * few refresh periods; then the sudden loss of 10% of the nodes, a few periods; then of 30%
 * of the survivors, a few periods. Per size and NAT share it prints, over the trials: how
 * often the tunnel graph is connected, hop counts (every pair), tunnels per node against
 * client_count and max_clients, refresh periods until connected and until the hop count
 * settles, and what the losses did. The last line is one JSON object.
 *
 *   deno task simulate [--sizes 100,1000,10000] [--nat 0,30,60] [--trials 100]
 *     [--seed 1] [--budget 30] [--budget-from 10000] [--workers 2] [--form-periods 2]
 *     [--heal-periods 1]
 *     [--losses 10,30] [--client-count 10] [--max-clients 20] [--hello 15]
 *     [--tunnel-refresh 300] [--full-ticks]
 *
 * (the task gives V8 an 8 GiB heap: a 10,000-node trial holds about 4 GiB.)
 * --budget: minutes for the whole run (0: no limit). Sizes below --budget-from always run
 * --trials; the configurations from that size on then take turns, one trial each, until
 * the budget is spent (at least one trial each; the number run is printed). --full-ticks runs every tick, even those that provably change
 * nothing (slower; the figures should not change). A seed replays the same trials.
 */
import { bfsScratch, hopHistogram, meanHops, randomOutGraph } from "./sim/graph.ts";
import { seeded } from "./sim/rng.ts";
import { f2, printReport } from "./sim/report.ts";
import { summarize } from "./sim/summary.ts";
import type { TrialOptions, TrialResult } from "./sim/trial.ts";

const USAGE = `deno task simulate [options]   (= deno run -A bench/simulate.ts, with an 8 GiB heap)
  --sizes 100,1000,10000   network sizes
  --nat 0,30,60            shares of the nodes behind a NAT, percent
  --trials 100             trials per size and NAT share
  --budget 30              minutes for the whole run (0: none): from --budget-from nodes on,
                           fewer trials when they do not fit (at least one each)
  --budget-from 10000
  --workers 2              trials run in parallel
  --seed 1                 the same seed replays the same trials
  --form-periods 2         refresh periods after the cold start
  --heal-periods 1         refresh periods after each loss
  --losses 10,30           nodes lost at once, percent of the live ones, one loss after the other
  --client-count 10        network parameters, as a registry publishes them
  --max-clients 20
  --hello 15
  --tunnel-refresh 300
  --full-ticks             run every tick, even those that provably change nothing (slower)`;

/** Command-line settings. */
export interface SimulateArgs {
  sizes: number[];
  /** NAT shares in percent. */
  nat: number[];
  trials: number;
  seed: number;
  budgetMin: number;
  /** Sizes from which the budget may cut the number of trials. */
  budgetFrom: number;
  workers: number;
  formPeriods: number;
  healPeriods: number;
  /** Losses in percent. */
  losses: number[];
  clientCount: number;
  maxClients: number;
  hello: number;
  tunnelRefresh: number;
  fullTicks: boolean;
}

/** Parses the command line; throws an Error naming the bad option. */
export function parseArgs(argv: string[]): SimulateArgs {
  const a: SimulateArgs = {
    sizes: [100, 1000, 10000],
    nat: [0, 30, 60],
    trials: 100,
    seed: 1,
    budgetMin: 30,
    budgetFrom: 10_000,
    workers: Math.max(1, Math.min(2, navigator.hardwareConcurrency)),
    formPeriods: 2,
    healPeriods: 1,
    losses: [10, 30],
    clientCount: 10,
    maxClients: 20,
    hello: 15,
    tunnelRefresh: 300,
    fullTicks: false,
  };
  const list = (o: string, v: string | undefined, min: number, max: number) => {
    const xs = (v ?? "").split(",").map(Number);
    if (!v || xs.some((x) => !Number.isFinite(x) || x < min || x > max)) {
      throw new Error(`${o}: expected numbers from ${min} to ${max} separated by commas, got ${v}`);
    }
    return xs;
  };
  const int = (o: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`${o}: expected an integer ≥ ${min}, got ${v}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const o = argv[i], v = argv[i + 1];
    switch (o) {
      case "--sizes":
        a.sizes = list(o, v, 2, 1_000_000).map(Math.round);
        break;
      case "--nat":
        a.nat = list(o, v, 0, 90);
        break;
      case "--losses":
        a.losses = list(o, v, 0, 90);
        break;
      case "--trials":
        a.trials = int(o, v, 1);
        break;
      case "--seed":
        a.seed = int(o, v, 0);
        break;
      case "--budget":
        a.budgetMin = int(o, v, 0);
        break;
      case "--budget-from":
        a.budgetFrom = int(o, v, 2);
        break;
      case "--workers":
        a.workers = int(o, v, 1);
        break;
      case "--form-periods":
        a.formPeriods = int(o, v, 1);
        break;
      case "--heal-periods":
        a.healPeriods = int(o, v, 1);
        break;
      case "--client-count":
        a.clientCount = int(o, v, 1);
        break;
      case "--max-clients":
        a.maxClients = int(o, v, 1);
        break;
      case "--hello":
        a.hello = int(o, v, 1);
        break;
      case "--tunnel-refresh":
        a.tunnelRefresh = int(o, v, 10);
        break;
      case "--full-ticks":
        a.fullTicks = true;
        continue;
      default:
        throw new Error(`unknown option ${o} (--help lists them)`);
    }
    i++;
  }
  return a;
}

/** The options of trial `t` of one configuration (its seed derives from all of them). */
export function trialOptions(
  a: SimulateArgs,
  nodes: number,
  natPct: number,
  t: number,
): TrialOptions {
  const seed = (Math.imul(a.seed + 1, 0x9e3779b1) ^ Math.imul(nodes, 0x85ebca6b) ^
    Math.imul(natPct + 1, 0xc2b2ae35) ^ Math.imul(t + 1, 0x27d4eb2f)) >>> 0;
  return {
    nodes,
    natShare: natPct / 100,
    seed,
    clientCount: a.clientCount,
    maxClients: a.maxClients,
    tunnelRefreshS: a.tunnelRefresh,
    helloS: a.hello,
    refuseDelayS: 5,
    detectS: 4 * a.hello,
    startSpreadS: 5,
    fullTicks: a.fullTicks,
    formPeriods: a.formPeriods,
    healPeriods: a.healPeriods,
    losses: a.losses.map((x) => x / 100),
    exactMax: 20_000,
    sources: 64,
    settleTolerance: 0.02,
  };
}

/** Runs trials on a pool of workers. */
class Pool {
  readonly #idle: Worker[] = [];
  readonly #all: Worker[] = [];
  readonly #waiting: ((w: Worker) => void)[] = [];
  constructor(n: number) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL("./sim/worker.ts", import.meta.url), { type: "module" });
      this.#all.push(w);
      this.#idle.push(w);
    }
  }
  async run(o: TrialOptions): Promise<TrialResult> {
    const w = this.#idle.pop() ?? await new Promise<Worker>((r) => this.#waiting.push(r));
    try {
      return await new Promise<TrialResult>((resolve, reject) => {
        w.onmessage = (e) =>
          e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.result);
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`worker failed: ${e.message}`));
        };
        w.postMessage(o);
      });
    } finally {
      const next = this.#waiting.shift();
      if (next) next(w);
      else this.#idle.push(w);
    }
  }
  close(): void {
    for (const w of this.#all) w.terminate();
  }
}

const say = (l: string) => console.error(l);
/** Mean hop count of a random graph where every node opens `k` edges (the reference's model). */
function randomAnchor(n: number, k: number, seed: number): number {
  const random = seeded(seed);
  const g = randomOutGraph(n, k, random);
  const all = Array.from({ length: n }, (_, i) => i);
  const sources = n <= 2000 ? all : all.filter(() => random() < 200 / n);
  return meanHops(hopHistogram(g, all, sources, bfsScratch(n)));
}

/** One configuration and the trials it ran. */
interface Combo {
  n: number;
  nat: number;
  results: TrialResult[];
}

/** Runs `jobs` on the pool, in order, skipping those `mayStart` refuses when their turn comes. */
async function runJobs(
  a: SimulateArgs,
  pool: Pool,
  jobs: { c: Combo; t: number }[],
  mayStart: (job: { c: Combo; t: number }) => boolean,
): Promise<void> {
  let k = 0;
  await Promise.all(Array.from({ length: a.workers }, async () => {
    while (k < jobs.length) {
      const { c, t } = jobs[k++];
      if (!mayStart({ c, t })) continue;
      const r = await pool.run(trialOptions(a, c.n, c.nat, t));
      c.results[t] = r;
      const bad = !r.formation.connected || r.losses.some((l) => !l.connected);
      say(
        `  [${c.n} nodes, NAT ${c.nat}%] trial ${t + 1}: hops ${f2(r.formation.hops.avg)}` +
          `${bad ? " NOT CONNECTED" : ""}, ${r.seconds.toFixed(1)} s (seed ${r.seed})`,
      );
    }
  }));
}

async function main(a: SimulateArgs): Promise<void> {
  const t0 = Date.now();
  const deadline = a.budgetMin ? t0 + a.budgetMin * 60_000 : Infinity;
  const combos: Combo[] = a.sizes.toSorted((x, y) => x - y)
    .flatMap((n) => a.nat.map((nat) => ({ n, nat, results: [] })));
  const pool = new Pool(a.workers);
  const anchors = new Map<number, number>();
  say(
    `simulate: sizes ${a.sizes.join(", ")}, NAT ${a.nat.join("/")}%, ${a.trials} trials each, ` +
      `${a.workers} workers, budget ${a.budgetMin || "∞"} min from ${a.budgetFrom} nodes, ` +
      `seed ${a.seed}`,
  );
  const trials = (c: Combo) => Array.from({ length: a.trials }, (_, t) => ({ c, t }));
  const done = (c: Combo, start: number) => {
    const ran = c.results.filter((r) => r).length;
    say(
      `[${c.n} nodes, NAT ${c.nat}%] ${ran}/${a.trials} trials in ` +
        `${((Date.now() - start) / 1000).toFixed(0)} s`,
    );
  };
  try {
    for (const n of new Set(combos.map((c) => c.n))) {
      anchors.set(n, randomAnchor(n, a.clientCount, a.seed));
    }
    // Below --budget-from: every trial, one configuration after the other.
    for (const c of combos.filter((c) => c.n < a.budgetFrom)) {
      const start = Date.now();
      await runJobs(a, pool, trials(c), () => true);
      done(c, start);
    }
    // From --budget-from on: the configurations take turns, trial by trial, until the budget
    // is spent (each runs at least one).
    const big = combos.filter((c) => c.n >= a.budgetFrom);
    const start = Date.now();
    const turns = Array.from({ length: a.trials }, (_, t) => big.map((c) => ({ c, t }))).flat();
    await runJobs(a, pool, turns, (j) => j.t === 0 || Date.now() < deadline);
    for (const c of big) done(c, start);
  } finally {
    pool.close();
  }
  const summaries = combos.map((c) =>
    summarize(c.n, c.nat / 100, a.trials, a, c.results.filter((r) => r))
  );
  printReport(a, summaries, anchors, (Date.now() - t0) / 1000);
}

if (import.meta.main) {
  if (Deno.args.includes("--help")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  let args: SimulateArgs;
  try {
    args = parseArgs(Deno.args);
  } catch (e) {
    console.error(`bench/simulate.ts: ${(e as Error).message}`);
    Deno.exit(2);
  }
  await main(args);
}
