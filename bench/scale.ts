/**
 * Scale benchmark (root): a real network of N nodes (default 40) in namespaces on the lab
 * topology (tests/netns/topology.ts: a shared LAN with the registry, two routed subnets and a
 * NATed subnet holding a quarter of the nodes), every node a real `re6st node` with its
 * babeld and OpenVPN. It measures:
 *  - from starting every node: the time until every node reaches the registry's node, and
 *    until `--pairs` random ordered pairs reach each other;
 *  - tunnels per node against client_count and max_clients, nodes each babeld knows (should
 *    be every other node), RSS and CPU of each node at rest;
 *  - after `--kill` random nodes (not the registry's) are killed at once: the time until
 *    `--pairs` random pairs of survivors reach each other again.
 * Everything it made is removed at the end. Prints tables and, last, one JSON line.
 *
 *   deno run -A bench/scale.ts [--nodes 40] [--hello 4] [--pairs 400] [--kill 4]
 *     [--rest 20] [--timeout 900]
 */
import type { StatusDocument } from "../core/status/document.ts";
import { benchArgs, readCounts } from "./args.ts";
import { createLab, type Lab } from "../tests/netns/lab.ts";
import { buildNetwork, type NetNode, type Network } from "../tests/netns/network.ts";
import { type RestUsage, restUsage } from "../tests/netns/perf.ts";
import { missingOfPairs, type ReachPair, type ReachTarget } from "../tests/netns/reach.ts";
import { table } from "../tests/netns/report.ts";
import { SCENARIO } from "../tests/netns/scenario.ts";

const USAGE = `deno run -A bench/scale.ts [options]   (root)
  --nodes 40      real nodes (n1 holds the registry; a quarter sit behind the NAT)
  --hello 4       Babel hello interval the registry publishes, seconds (the lab's)
  --pairs 400     random ordered pairs pinged
  --kill 4        nodes killed at once (never the registry's)
  --rest 20       seconds of the at-rest RSS and CPU sample
  --timeout 900   seconds to wait for each reachability goal`;

interface Args {
  nodes: number;
  hello: number;
  pairs: number;
  kill: number;
  restS: number;
  timeoutS: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    nodes: 40,
    hello: SCENARIO.hello,
    pairs: 400,
    kill: 4,
    restS: 20,
    timeoutS: 900,
  };
  const keys: Record<string, keyof Args> = {
    "--nodes": "nodes",
    "--hello": "hello",
    "--pairs": "pairs",
    "--kill": "kill",
    "--rest": "restS",
    "--timeout": "timeoutS",
  };
  readCounts(argv, keys, a);
  if (a.nodes < 4) throw new Error("--nodes: at least 4");
  if (a.kill > a.nodes - 3) throw new Error(`--kill: at most ${a.nodes - 3} of ${a.nodes} nodes`);
  return a;
}

const say = (l: string) => console.error(`  ${l}`);
const secs = (ms: number | null) => ms === null ? "not reached" : (ms / 1000).toFixed(1);

/** `n` random distinct ordered pairs of `nodes` (all of them when fewer exist). */
function randomPairs(nodes: readonly NetNode[], n: number): ReachPair[] {
  const all: ReachPair[] = [];
  const t = (x: NetNode): ReachTarget => ({ name: x.name, host: x.name, ip: x.ip! });
  for (const a of nodes) for (const b of nodes) if (a !== b) all.push({ from: t(a), to: t(b) });
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, n);
}

/**
 * Pings every pair of `pairs` each round until one round where all answer; the time from
 * `t0` (ms), or null after `timeoutMs` (with the pairs the last round missed).
 */
async function untilReached(
  lab: Lab,
  pairs: readonly ReachPair[],
  t0: number,
  timeoutMs: number,
  what: string,
): Promise<{ ms: number | null; missing: string[]; firstMissing: number }> {
  let missing: ReachPair[] = [];
  let firstMissing = -1;
  let last = -1;
  while (Date.now() - t0 < timeoutMs) {
    missing = await missingOfPairs(lab, pairs);
    if (firstMissing < 0) firstMissing = missing.length;
    if (missing.length === 0) return { ms: Date.now() - t0, missing: [], firstMissing };
    if (missing.length !== last) {
      say(
        `${what}: ${pairs.length - missing.length}/${pairs.length} after ${
          secs(Date.now() - t0)
        } s`,
      );
      last = missing.length;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { ms: null, missing: missing.map((p) => `${p.from.name}→${p.to.name}`), firstMissing };
}

interface NodeFigures {
  name: string;
  site: string;
  out: number;
  in: number;
  /** Nodes babeld has a route to, the node itself included. */
  nodesKnown: number;
  routes: number;
  /** JavaScript heap in use, MiB (null: the node does not report it). */
  heapUsedMb: number | null;
  usage: RestUsage | null;
}

const stat = (xs: number[]) =>
  xs.length
    ? {
      mean: xs.reduce((s, x) => s + x, 0) / xs.length,
      min: Math.min(...xs),
      max: Math.max(...xs),
    }
    : null;

async function nodeFigures(lab: Lab, net: Network, restS: number): Promise<NodeFigures[]> {
  const docs = await Promise.all(net.nodes.map((n) => net.status(n)));
  const registryPid = net.registry?.pid;
  const usage = await Promise.all(
    net.nodes.map((n) =>
      n.process
        ? restUsage(lab, n.name, n.process.pid, restS * 1000, registryPid ? [registryPid] : [])
        : null
    ),
  );
  return net.nodes.map((n, i) => {
    const d: StatusDocument | null = docs[i];
    const up = d?.tunnels.filter((t) => t.established) ?? [];
    return {
      name: n.name,
      site: n.site,
      out: up.filter((t) => t.direction === "client").length,
      in: up.filter((t) => t.direction === "server").length,
      nodesKnown: d ? d.babel.knownNodes + 1 : 0,
      routes: d?.babel.routes ?? 0,
      heapUsedMb: d?.memory ? d.memory.heapUsed / 1048576 : null,
      usage: usage[i],
    };
  });
}

if (import.meta.main) {
  const args = benchArgs("bench/scale.ts", USAGE, parseArgs);
  const lab = await createLab("scale");
  let net: Network | undefined;
  const out: Record<string, unknown> = { bench: "scale", nodes: args.nodes, hello: args.hello };
  const ms: { toRegistry: number | null; pairs: number | null; heal: number | null } = {
    toRegistry: null,
    pairs: null,
    heal: null,
  };
  let figures: NodeFigures[] = [];
  let fatal: string | null = null;
  const started = Date.now();
  try {
    net = await buildNetwork(lab, { nodes: args.nodes, hello: args.hello, start: false, log: say });
    out.enrolledS = (Date.now() - started) / 1000;
    const live = () => net!.nodes.filter((n) => n.process);
    const reg = net.nodes[0];
    const t0 = Date.now();
    net.startAll();
    // Every node reaches the registry's node.
    const toRegistry = net.nodes.filter((n) => n !== reg).map((n): ReachPair => ({
      from: { name: n.name, host: n.name, ip: n.ip! },
      to: { name: reg.name, host: reg.name, ip: reg.ip! },
    }));
    const r1 = await untilReached(
      lab,
      toRegistry,
      t0,
      args.timeoutS * 1000,
      "nodes reaching the registry's node",
    );
    ms.toRegistry = r1.ms;
    out.toRegistryMissing = r1.missing;
    const pairs = randomPairs(net.nodes, args.pairs);
    const r2 = await untilReached(lab, pairs, t0, args.timeoutS * 1000, "random pairs");
    out.pairs = pairs.length;
    ms.pairs = r2.ms;
    out.pairsMissing = r2.missing;
    say(
      `every node reaches the registry's node after ${secs(r1.ms)} s, ${pairs.length} pairs after ${
        secs(r2.ms)
      } s`,
    );

    // At rest: a few hellos after the last pair answered, then everybody at once.
    await new Promise((r) => setTimeout(r, 3 * args.hello * 1000));
    figures = await nodeFigures(lab, net, args.restS);
    const doc = await net.status(reg);
    out.clientCount = doc?.networkConfig.clientCount ?? null;
    out.maxClients = doc?.networkConfig.maxClients ?? null;

    // Killing nodes at once (never the registry's host).
    const candidates = live().filter((n) => n !== reg);
    const victims = candidates.sort(() => Math.random() - 0.5).slice(0, args.kill);
    say(`killing ${victims.map((v) => `${v.name} (${v.site})`).join(", ")}`);
    const t1 = Date.now();
    await Promise.all(victims.map((v) => net!.crashNode(v)));
    const survivorPairs = randomPairs(live(), args.pairs);
    const r3 = await untilReached(lab, survivorPairs, t1, args.timeoutS * 1000, "survivor pairs");
    out.killed = victims.map((v) => ({ name: v.name, site: v.site }));
    out.lostAtFirstCheck = r3.firstMissing;
    ms.heal = r3.ms;
    out.healMissing = r3.missing;
    say(
      `${r3.firstMissing}/${survivorPairs.length} survivor pairs lost at the first check; all again after ${
        secs(r3.ms)
      } s`,
    );
  } catch (e) {
    fatal = (e as Error).message;
    console.error(`scale bench FAILED: ${fatal}`);
    if (net) console.error(await net.explain().catch(() => ""));
  } finally {
    await net?.stop();
    await lab.cleanup();
  }
  const used = figures.filter((f) => f.usage);
  const n = (k: (f: NodeFigures) => number) => stat(used.map(k));
  const fmt = (s: ReturnType<typeof stat>, d = 1) =>
    s ? `${s.mean.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : "-";
  const summary = {
    out: n((f) => f.out),
    in: n((f) => f.in),
    nodesKnown: n((f) => f.nodesKnown),
    routes: n((f) => f.routes),
    nodeRssMb: n((f) => f.usage!.nodeRssMb),
    heapUsedMb: stat(used.flatMap((f) => f.heapUsedMb === null ? [] : [f.heapUsedMb])),
    childrenRssMb: n((f) => f.usage!.childrenRssMb),
    nodeCpuPct: n((f) => f.usage!.nodeCpuPct),
    allCpuPct: n((f) => f.usage!.allCpuPct),
    tapBytesPerS: stat(used.flatMap((f) => f.usage!.tapBytesPerS)),
  };
  console.log(
    `\nScale: ${args.nodes} real nodes, babel hello ${args.hello} s, ${navigator.hardwareConcurrency} cores`,
  );
  console.log(table([
    ["WHAT", "SECONDS"],
    ["every node reaches the registry's node (from start)", secs(ms.toRegistry)],
    [`${out.pairs ?? args.pairs} random pairs reach each other (from start)`, secs(ms.pairs)],
    [`${args.pairs} survivor pairs again after killing ${args.kill} nodes`, secs(ms.heal)],
  ]));
  console.log(
    `\nPer node (mean (min–max)); client_count ${out.clientCount ?? "?"}, max_clients ${
      out.maxClients ?? "?"
    }`,
  );
  console.log(table([
    ["FIGURE", "VALUE"],
    ["client tunnels (out)", fmt(summary.out)],
    ["served clients (in)", fmt(summary.in)],
    [`nodes babeld knows, itself included (of ${args.nodes})`, fmt(summary.nodesKnown)],
    ["babel routes", fmt(summary.routes)],
    [`node RSS MiB (at rest, ${args.restS} s)`, fmt(summary.nodeRssMb)],
    ["node JavaScript heap used MiB", fmt(summary.heapUsedMb)],
    ["babeld + OpenVPN RSS MiB", fmt(summary.childrenRssMb)],
    ["node CPU % of a core", fmt(summary.nodeCpuPct, 2)],
    ["node + babeld + OpenVPN CPU %", fmt(summary.allCpuPct, 2)],
    ["traffic per tunnel at rest (client end, in + out), B/s", fmt(summary.tapBytesPerS, 0)],
  ]));
  if (figures.length) {
    console.log(
      "\n" + table([
        ["NODE", "SITE", "OUT", "IN", "KNOWS", "RSS MiB", "CPU %"],
        ...figures.map((f) => [
          f.name,
          f.site,
          String(f.out),
          String(f.in),
          String(f.nodesKnown),
          f.usage ? f.usage.nodeRssMb.toFixed(0) : "-",
          f.usage ? f.usage.allCpuPct.toFixed(1) : "-",
        ]),
      ]),
    );
  }
  const s = (x: number | null) => x === null ? null : x / 1000;
  console.log(JSON.stringify({
    ...out,
    toRegistryS: s(ms.toRegistry),
    pairsS: s(ms.pairs),
    healS: s(ms.heal),
    summary,
    perNode: figures,
    error: fatal,
    seconds: (Date.now() - started) / 1000,
  }));
  Deno.exit(fatal || ms.pairs === null || ms.heal === null ? 1 : 0);
}
