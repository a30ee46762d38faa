/**
 * Convergence benchmark (root): for 4, 8 and 12 nodes on the lab topology, the time from
 * starting every `re6st node` to all-pairs ping6 reachability, then each node's memory (RSS,
 * and the JavaScript heap within it from its status document) and CPU at rest. Prints a table
 * and JSON; asserts nothing.
 *
 *   deno run -A bench/convergence.ts [--nodes 4,8,12] [--hello 4] [--rest 20] [--timeout 300]
 */
import { createLab } from "../tests/netns/lab.ts";
import { buildNetwork, type Network } from "../tests/netns/network.ts";
import { restUsage } from "../tests/netns/perf.ts";
import { table } from "../tests/netns/report.ts";

interface Args {
  sizes: number[];
  hello: number;
  restS: number;
  timeoutS: number;
  clientCount?: number;
}

interface Row {
  nodes: number;
  hello: number;
  /** Seconds from starting the nodes to all-pairs reachability (null: not reached). */
  convergenceS: number | null;
  /** Seconds until every node reported an established tunnel and a babel route. */
  connectedS: number | null;
  /** Established tunnels in the network once converged. */
  tunnels: number | null;
  nodeRssMb: { mean: number; max: number } | null;
  /** The node's V8 heap (status document `memory`): used and allocated, MiB. */
  nodeHeapUsedMb: { mean: number; max: number } | null;
  nodeHeapTotalMb: { mean: number; max: number } | null;
  childrenRssMb: { mean: number; max: number } | null;
  nodeCpuPct: { mean: number; max: number } | null;
  allCpuPct: { mean: number; max: number } | null;
  /** Traffic at rest of each tunnel (received + sent at its client end), bytes per second. */
  tunnelBytesPerS: { mean: number; max: number } | null;
  error?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sizes: [4, 8, 12], hello: 4, restS: 20, timeoutS: 300 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    const n = Number(v);
    switch (argv[i]) {
      case "--nodes":
        a.sizes = (v ?? "").split(",").map(Number);
        if (!a.sizes.length || a.sizes.some((x) => !Number.isInteger(x) || x < 2)) {
          throw new Error(`--nodes: expected sizes like 4,8,12, got ${v}`);
        }
        break;
      case "--hello":
        a.hello = n;
        break;
      case "--rest":
        a.restS = n;
        break;
      case "--timeout":
        a.timeoutS = n;
        break;
      case "--client-count":
        a.clientCount = n;
        break;
      default:
        throw new Error(`unknown option ${argv[i]}`);
    }
    if (argv[i] !== "--nodes" && !(Number.isFinite(n) && n > 0)) {
      throw new Error(`${argv[i]}: bad value ${v}`);
    }
    i++;
  }
  return a;
}

const stats = (xs: number[]) =>
  xs.length ? { mean: xs.reduce((s, x) => s + x, 0) / xs.length, max: Math.max(...xs) } : null;

async function measure(n: number, a: Args): Promise<Row> {
  const row: Row = {
    nodes: n,
    hello: a.hello,
    convergenceS: null,
    connectedS: null,
    tunnels: null,
    nodeRssMb: null,
    nodeHeapUsedMb: null,
    nodeHeapTotalMb: null,
    childrenRssMb: null,
    nodeCpuPct: null,
    allCpuPct: null,
    tunnelBytesPerS: null,
  };
  const lab = await createLab(`conv${n}`);
  let net: Network | undefined;
  try {
    net = await buildNetwork(lab, {
      nodes: n,
      hello: a.hello,
      clientCount: a.clientCount,
      start: false,
      log: (l) => console.error(`  [${n} nodes] ${l}`),
    });
    const t0 = Date.now();
    net.startAll();
    let connectedMs: number | null = null;
    const { ms } = await net.waitReachable({
      timeoutMs: a.timeoutS * 1000,
      onRound: async () => {
        if (connectedMs !== null) return;
        const docs = await Promise.all(net!.nodes.map((x) => net!.status(x)));
        const ok = docs.every((d) => d && d.tunnels.some((t) => t.established) && d.babel.routes);
        if (ok) connectedMs = Date.now() - t0;
      },
    });
    row.connectedS = connectedMs === null ? null : connectedMs / 1000;
    row.convergenceS = ms / 1000;
    console.error(`  [${n} nodes] all pairs reachable after ${row.convergenceS.toFixed(1)} s`);
    const docs = await Promise.all(net.nodes.map((x) => net!.status(x)));
    let tunnels = 0;
    for (const d of docs) {
      tunnels += d?.tunnels.filter((t) => t.established && t.direction === "client").length ?? 0;
    }
    row.tunnels = docs.every((d) => d) ? tunnels : null; // null: some node gave no status
    // At rest: let the tunnels settle for a few hellos, then sample every node at once.
    await new Promise((r) => setTimeout(r, 3 * a.hello * 1000));
    const registryPid = net.registry?.pid;
    const usage = await Promise.all(
      net.nodes.filter((x) => x.process).map((x) =>
        restUsage(lab, x.name, x.process!.pid, a.restS * 1000, registryPid ? [registryPid] : [])
      ),
    );
    row.nodeRssMb = stats(usage.map((u) => u.nodeRssMb));
    const memory = (await Promise.all(net.nodes.map((x) => net!.status(x))))
      .flatMap((d) => d?.memory ? [d.memory] : []); // older nodes do not report it
    row.nodeHeapUsedMb = stats(memory.map((m) => m.heapUsed / 1048576));
    row.nodeHeapTotalMb = stats(memory.map((m) => m.heapTotal / 1048576));
    row.childrenRssMb = stats(usage.map((u) => u.childrenRssMb));
    row.nodeCpuPct = stats(usage.map((u) => u.nodeCpuPct));
    row.allCpuPct = stats(usage.map((u) => u.allCpuPct));
    row.tunnelBytesPerS = stats(usage.flatMap((u) => u.tapBytesPerS));
  } catch (e) {
    row.error = (e as Error).message;
    console.error(`  [${n} nodes] FAILED: ${row.error}`);
  } finally {
    await net?.stop();
    await lab.cleanup();
  }
  return row;
}

const f = (x: number | null | undefined, d = 1) =>
  x === null || x === undefined ? "-" : x.toFixed(d);
const mm = (s: { mean: number; max: number } | null, d = 1) =>
  s ? `${s.mean.toFixed(d)} / ${s.max.toFixed(d)}` : "-";

if (import.meta.main) {
  if (Deno.uid() !== 0) {
    console.error("bench/convergence.ts: must run as root (network namespaces)");
    Deno.exit(1);
  }
  const args = parseArgs(Deno.args);
  const rows: Row[] = [];
  for (const n of args.sizes) rows.push(await measure(n, args));
  const goalS = 3 * args.hello + 5;
  console.log(
    `\nConvergence (babel hello ${args.hello} s; goal: all pairs within 3 × hello + 5 s = ` +
      `${goalS} s; at rest: ${args.restS} s window; traffic at rest goal < 1000 B/s per tunnel)`,
  );
  const xHello = (s: number | null) => (s === null ? "-" : `${(s / args.hello).toFixed(1)}×`);
  console.log(table([
    [
      "NODES",
      "HELLO",
      "ALL CONNECTED (s)",
      "TO ALL-PAIRS (s)",
      "× HELLO",
      "GOAL MET",
      "TUNNELS",
      "NODE RSS MiB mean/max",
      "JS HEAP MiB used/total",
      "BABELD+OPENVPN RSS MiB",
      "NODE CPU % mean/max",
      "ALL CPU %",
      "TUNNEL B/s mean/max",
    ],
    ...rows.map((r) => [
      String(r.nodes),
      String(r.hello),
      f(r.connectedS),
      r.error ? `failed: ${r.error.split("\n")[0]}` : f(r.convergenceS),
      xHello(r.convergenceS),
      r.convergenceS === null ? "-" : r.convergenceS <= goalS ? "yes" : "no",
      r.tunnels === null ? "-" : String(r.tunnels),
      mm(r.nodeRssMb),
      r.nodeHeapUsedMb && r.nodeHeapTotalMb
        ? `${f(r.nodeHeapUsedMb.mean)} / ${f(r.nodeHeapTotalMb.mean)}`
        : "-",
      mm(r.childrenRssMb),
      mm(r.nodeCpuPct, 2),
      mm(r.allCpuPct, 2),
      mm(r.tunnelBytesPerS, 0),
    ]),
  ]));
  console.log(
    "\nJSON " +
      JSON.stringify({ bench: "convergence", cores: navigator.hardwareConcurrency, rows }),
  );
  Deno.exit(rows.some((r) => r.error) ? 1 : 0);
}
