/**
 * Failover benchmark (root), on one lab network (default 8 nodes):
 *  - a node crashes (every process of its host killed): time until the others reach each
 *    other again, and, once restarted, until it is reachable again;
 *  - a link fails (the underlay path between the two ends of a tunnel is cut): time until
 *    every pair reaches each other again, around it;
 *  - the registry's host crashes (its node, often the hub of a young network, and the
 *    registry): time until the others reach each other again without them;
 *  - throughput of one re6st tunnel against a bare OpenVPN tunnel (same transport, same data
 *    channel settings) between the same two namespaces, with iperf3.
 * Prints a table and JSON; asserts nothing.
 *
 *   deno run -A bench/failover.ts [--nodes 8] [--hello 4] [--timeout 180] [--iperf 5]
 */
import { join } from "node:path";
import { benchArgs, readCounts } from "./args.ts";
import { createLab, type Lab } from "../tests/netns/lab.ts";
import { buildNetwork, type NetNode, type Network, tunnelPairs } from "../tests/netns/network.ts";
import { bareOpenVpn, iperf, type Throughput } from "../tests/netns/perf.ts";
import { table } from "../tests/netns/report.ts";
import { cutBetween } from "../tests/netns/topology.ts";

const USAGE = `deno run -A bench/failover.ts [options]   (root)
  --nodes 8       lab nodes (n1 holds the registry)
  --hello 4       Babel hello interval the registry publishes, seconds
  --timeout 180   seconds to wait for each reachability goal
  --iperf 5       seconds of each throughput run`;

interface Args {
  nodes: number;
  hello: number;
  timeoutS: number;
  iperfS: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { nodes: 8, hello: 4, timeoutS: 180, iperfS: 5 };
  const keys: Record<string, keyof Args> = {
    "--nodes": "nodes",
    "--hello": "hello",
    "--timeout": "timeoutS",
    "--iperf": "iperfS",
  };
  readCounts(argv, keys, a);
  if (a.nodes < 4) throw new Error("--nodes: at least 4 (a failure needs a way around it)");
  return a;
}

interface Figure {
  what: string;
  /** Seconds to regain all-pairs reachability (null: not regained). */
  seconds: number | null;
  detail: string;
  error?: string;
}

const say = (l: string) => console.error(`  ${l}`);

/** Times `waitReachable` after an event; records a failure instead of throwing. */
async function timed(
  net: Network,
  what: string,
  detail: string,
  timeoutS: number,
  among?: readonly NetNode[],
): Promise<Figure> {
  const t0 = Date.now();
  let firstRound: string | null = null;
  try {
    await net.waitReachable({
      timeoutMs: timeoutS * 1000,
      among,
      what,
      onRound: (r) => {
        firstRound ??= `${r.total - r.reached}/${r.total} pairs lost at first check`;
      },
    });
    const seconds = (Date.now() - t0) / 1000;
    say(`${what}: ${seconds.toFixed(1)} s`);
    return { what, seconds, detail: `${detail}; ${firstRound}` };
  } catch (e) {
    say(`${what}: FAILED ${(e as Error).message}`);
    return { what, seconds: null, detail, error: (e as Error).message };
  }
}

/** Mean of several iperf3 runs. */
function mean(runs: Throughput[]): Throughput & { runs: number[] } {
  return {
    mbps: runs.reduce((x, r) => x + r.mbps, 0) / runs.length,
    retransmits: runs.reduce((x, r) => x + r.retransmits, 0),
    runs: runs.map((r) => Math.round(r.mbps)),
  };
}

/** iperf3 through the re6st tunnel and a bare OpenVPN tunnel, alternately, `rounds` times. */
async function throughput(
  lab: Lab,
  net: Network,
  a: NetNode,
  b: NetNode,
  proto: string,
  seconds: number,
  rounds = 2,
) {
  const route = (await lab.exec(a.name, ["ip", "-6", "route", "get", b.ip!])).stdout.trim();
  const tunnel = await bareOpenVpn(lab, a.name, b.name, {
    ca: join(a.dir, "ca.crt"),
    certA: join(a.dir, "cert.crt"),
    keyA: join(a.dir, "cert.key"),
    certB: join(b.dir, "cert.crt"),
    keyB: join(b.dir, "cert.key"),
    addressB: b.underlay,
    proto: proto.startsWith("udp") ? "udp" : "tcp",
    logDir: net.workDir,
  });
  const re6st: Throughput[] = [];
  const bare: Throughput[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      re6st.push(await iperf(lab, b.name, b.ip!, a.name, { seconds, bindIp: a.ip! }));
      bare.push(await iperf(lab, b.name, tunnel.ipB, a.name, { seconds, port: 5202 }));
    }
  } finally {
    await tunnel.stop();
  }
  return { re6st: mean(re6st), bare: mean(bare), route };
}

if (import.meta.main) {
  const args = benchArgs("bench/failover.ts", USAGE, parseArgs);
  const lab = await createLab("failover");
  const figures: Figure[] = [];
  let tput: Awaited<ReturnType<typeof throughput>> | null = null;
  let pair = "";
  let fatal: string | null = null;
  let net: Network | undefined;
  try {
    net = await buildNetwork(lab, { nodes: args.nodes, hello: args.hello, log: say });
    const up = await net.waitReachable({ timeoutMs: args.timeoutS * 1000 });
    say(`network formed in ${(up.ms / 1000).toFixed(1)} s`);

    // Node failure: the public node (not the registry's) with the most tunnels.
    const counts = await Promise.all(net.nodes.map(async (n) => ({
      n,
      up: (await net!.status(n))?.tunnels.filter((t) => t.established).length ?? 0,
    })));
    const victim = counts.filter((c) => !c.n.isRegistry && c.n.site !== "nat")
      .sort((x, y) => y.up - x.up)[0].n;
    await net.crashNode(victim);
    figures.push(
      await timed(
        net,
        "node crash: others reach each other again",
        `${victim.name} (${victim.site}, ${counts.find((c) => c.n === victim)!.up} tunnels) killed`,
        args.timeoutS,
        net.nodes.filter((n) => n !== victim),
      ),
    );
    net.startNode(victim);
    figures.push(
      await timed(net, "node restart: all pairs again", `${victim.name} restarted`, args.timeoutS),
    );

    // Link failure: cut the underlay between the two ends of a tunnel.
    // Preferably a tunnel whose two ends have other tunnels, so traffic can go around it.
    const around = await lab.waitFor(async () => (await tunnelPairs(net!, 2))[0], {
      what: "a tunnel whose ends have other tunnels",
      timeoutMs: 60_000,
      intervalMs: 1000,
    }).catch(() => null);
    const cut = around ?? (await tunnelPairs(net))[0];
    if (!cut) throw new Error("no established tunnel between two nodes outside the NAT");
    const { client: a, server: b, protocol: proto } = cut;
    const mend = await cutBetween(lab, a, b);
    figures.push(
      await timed(
        net,
        "link cut: all pairs again",
        `underlay ${a.name}↔${b.name} cut (${proto} tunnel` +
          `${around ? "" : `, the only tunnel of one end`})`,
        args.timeoutS,
      ),
    );
    await mend();

    // Throughput through one direct tunnel (wait until the pair is directly connected again).
    const direct = await lab.waitFor(async () => (await tunnelPairs(net!))[0], {
      what: "a direct tunnel between two nodes outside the NAT",
      timeoutMs: args.timeoutS * 1000,
      intervalMs: 1000,
    });
    pair = `${direct.client.name}→${direct.server.name} (${direct.protocol})`;
    tput = await throughput(
      lab,
      net,
      direct.client,
      direct.server,
      direct.protocol,
      args.iperfS,
    );
    say(
      `throughput ${pair}: re6st ${tput.re6st.mbps.toFixed(0)} Mbit/s, ` +
        `bare OpenVPN ${tput.bare.mbps.toFixed(0)} Mbit/s (route: ${tput.route})`,
    );

    // Last, the hub: the registry's node crashes together with the registry (same host).
    // The others must reconnect among themselves from their caches and routes.
    const hub = net.nodes[0];
    const hubTunnels = (await net.status(hub))?.tunnels.filter((t) => t.established).length;
    await net.crashNode(hub);
    figures.push(
      await timed(
        net,
        "registry host crash: others reach each other again",
        `${hub.name} (node with ${hubTunnels ?? "?"} tunnels, and the registry) killed`,
        args.timeoutS,
        net.nodes.filter((n) => n !== hub),
      ),
    );
  } catch (e) {
    fatal = (e as Error).message;
    console.error(`failover bench FAILED: ${fatal}`);
  } finally {
    await net?.stop();
    await lab.cleanup();
  }
  console.log(
    `\nFailover (${args.nodes} nodes, babel hello ${args.hello} s; goals: a crash or a cut ` +
      `routed around within 2 × hello = ${2 * args.hello} s, a registry host crash within ` +
      "2 × hello + the time to open one tunnel)",
  );
  const goal = (f: Figure) =>
    f.what.startsWith("node restart")
      ? "-"
      : f.what.startsWith("registry")
      ? "2×hello + 1 tunnel"
      : `${2 * args.hello} s`;
  console.log(table([
    ["EVENT", "TO ALL-PAIRS (s)", "× HELLO", "GOAL", "DETAIL"],
    ...figures.map((f) => [
      f.what,
      f.seconds === null ? "not regained" : f.seconds.toFixed(1),
      f.seconds === null ? "-" : `${(f.seconds / args.hello).toFixed(1)}×`,
      goal(f),
      f.error ? `${f.detail}; ${f.error.split("\n")[0]}` : f.detail,
    ]),
  ]));
  if (tput) {
    console.log(`\nThroughput, one TCP stream, ${args.iperfS} s per run, runs alternated, ${pair}`);
    console.log(table([
      ["PATH", "Mbit/s (mean)", "RUNS", "RETRANSMITS"],
      ...([["re6st tunnel", tput.re6st], ["bare OpenVPN", tput.bare]] as const).map((
        [name, t],
      ) => [name, t.mbps.toFixed(1), t.runs.join(", "), String(t.retransmits)]),
    ]));
    console.log(`re6st/bare: ${(100 * tput.re6st.mbps / tput.bare.mbps).toFixed(0)}%`);
  }
  console.log(
    "\nJSON " + JSON.stringify({
      bench: "failover",
      nodes: args.nodes,
      hello: args.hello,
      cores: navigator.hardwareConcurrency,
      figures,
      throughput: tput && { pair, ...tput },
      error: fatal,
    }),
  );
  Deno.exit(fatal || figures.some((f) => f.error) ? 1 : 0);
}
