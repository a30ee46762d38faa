/**
 * The demo network: builds a real re6st network on this machine inside network namespaces
 * (a registry and N nodes on a shared LAN, two routed subnets and a NATed subnet), shows it
 * forming, then a summary, the all-pairs reachability matrix and the topology as Graphviz.
 * Ctrl-C or --duration ends it and removes everything it made. Run it with `scripts/demo`.
 */
import { describeError } from "../core/errors.ts";
import { join } from "node:path";
import { createLab, type Lab } from "../tests/netns/lab.ts";
import { buildNetwork, type Network, NetworkError } from "../tests/netns/network.ts";
import { type Reachability, renderMatrix } from "../tests/netns/reach.ts";
import { progressTable, readStatuses, statusDot, summaryTable } from "../tests/netns/report.ts";

const HELP = `Usage: scripts/demo [options]     (as root; also: deno task demo)

Builds a re6st network in network namespaces on this machine: a CA, a registry, and N nodes
on a shared LAN segment, two routed subnets and one NATed subnet. Every node is enrolled with
're6st conf --anonymous' and runs 're6st node'. Shows progress while the network forms, then
a summary, the all-pairs ping6 matrix and the topology (Graphviz, SVG when 'dot' exists).

Options:
  --nodes N       number of nodes, the registry's own node included (default 8, 2-30)
  --duration S    keep the network up S seconds once shown, then remove it
                  (default: until Ctrl-C)
  --hello S       babel hello interval published by the registry (default 4)
  --timeout S     give up if the network has not formed after S seconds (default 240)
  --out DIR       where the topology files go (default /tmp/re6st-demo)
  -h, --help      this help

Ctrl-C at any time removes the namespaces, processes and temporary files it made.`;

interface DemoOptions {
  nodes: number;
  duration: number | null;
  hello: number;
  timeout: number;
  out: string;
}

function parseArgs(args: string[]): DemoOptions | null {
  const o: DemoOptions = {
    nodes: 8,
    duration: null,
    hello: 4,
    timeout: 240,
    out: "/tmp/re6st-demo",
  };
  const num = (name: string, v: string | undefined, min: number, max: number) => {
    const n = Number(v);
    if (v === undefined || !/^\d+$/.test(v) || n < min || n > max) {
      throw new Error(`option ${name}: expected a whole number from ${min} to ${max}, got ${v}`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [flag, inline] = a.startsWith("--") && a.includes("=") ? a.split(/=(.*)/s) : [a];
    const value = () => inline ?? args[++i];
    if (flag === "-h" || flag === "--help") return null;
    else if (flag === "--nodes") o.nodes = num(flag, value(), 2, 30);
    else if (flag === "--duration") o.duration = num(flag, value(), 0, 86400 * 7);
    else if (flag === "--hello") o.hello = num(flag, value(), 1, 120);
    else if (flag === "--timeout") o.timeout = num(flag, value(), 10, 3600);
    else if (flag === "--out") {
      const v = value();
      if (!v) throw new Error("option --out: missing folder");
      o.out = v;
    } else throw new Error(`unknown option "${a}" (try --help)`);
  }
  return o;
}

const isTty = Deno.stdout.isTerminal();
const say = (line = "") => console.log(line);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Prints a head line and a block, redrawing the previous ones in place on a terminal;
 * elsewhere (logs) prints only when the block changed, at most every 10 s.
 */
function redrawer() {
  let previous = 0;
  let lastBody = "";
  let lastPrint = 0;
  return (head: string, body: string, force = false) => {
    const text = `${head}\n${body}`;
    if (isTty) {
      if (previous) Deno.stdout.writeSync(new TextEncoder().encode(`\x1b[${previous}A\x1b[J`));
      say(text);
      previous = text.split("\n").length;
    } else if (force || (body !== lastBody && Date.now() - lastPrint > 10_000)) {
      say(text + "\n");
      lastBody = body;
      lastPrint = Date.now();
    }
  };
}

/** Waits until every pair of nodes answers pings, showing progress; returns the seconds. */
async function watchForming(net: Network, o: DemoOptions): Promise<number> {
  const start = Date.now();
  const show = redrawer();
  let reach: Reachability | undefined;
  for (;;) {
    const docs = await readStatuses(net);
    reach = await net.reachability(net.nodes);
    const s = ((Date.now() - start) / 1000).toFixed(0);
    const head = `[${s.padStart(4)} s] ${reach.reached}/${reach.total} pairs reachable`;
    show(head, progressTable(net, docs, reach), reach.full);
    if (reach.full) return (Date.now() - start) / 1000;
    if (net.nodes.every((n) => !n.process)) {
      throw new NetworkError(
        "every re6st node exited\n" + await net.explain(reach),
      );
    }
    if (Date.now() - start > o.timeout * 1000) {
      throw new NetworkError(
        `the network did not form within ${o.timeout} s\n` + await net.explain(reach),
      );
    }
    await sleep(2000);
  }
}

async function writeTopology(net: Network, o: DemoOptions): Promise<void> {
  await Deno.mkdir(o.out, { recursive: true });
  const dotFile = join(o.out, "re6st-demo.dot");
  await Deno.writeTextFile(dotFile, statusDot(net, await readStatuses(net)));
  say(`Topology (from the nodes' status): ${dotFile}`);
  const fromRegistry = await net.registryDot();
  if (fromRegistry) {
    const f = join(o.out, "re6st-registry.dot");
    await Deno.writeTextFile(f, fromRegistry);
    say(`Topology as the registry sees it (re6st status --registry … --dot): ${f}`);
  }
  for (const f of [dotFile, ...(fromRegistry ? [join(o.out, "re6st-registry.dot")] : [])]) {
    const svg = f.replace(/\.dot$/, ".svg");
    try {
      const r = await new Deno.Command("dot", { args: ["-Tsvg", "-o", svg, f], stderr: "piped" })
        .output();
      if (r.success) say(`  SVG: ${svg}`);
      else say(`  (dot failed: ${new TextDecoder().decode(r.stderr).trim()})`);
    } catch {
      say("  (install graphviz for an SVG: apt-get install graphviz)");
      break;
    }
  }
}

async function demo(o: DemoOptions, lab: Lab): Promise<void> {
  say(`re6st demo: ${o.nodes} nodes, babel hello ${o.hello} s (Ctrl-C to stop)`);
  const net = await buildNetwork(lab, {
    nodes: o.nodes,
    hello: o.hello,
    log: (l) => say(`  ${l}`),
  });
  try {
    say("\nWaiting for every node to reach every other (per node: enrolled, tunnels, routes):");
    const secs = await watchForming(net, o);
    say(`\nAll ${o.nodes} nodes reach each other, ${secs.toFixed(1)} s after the nodes started.\n`);
    say(summaryTable(net, await readStatuses(net)));
    say("\nAll-pairs ping6 between re6st addresses (rows ping columns):");
    say(renderMatrix(await net.reachability(net.nodes)));
    say("");
    await writeTopology(net, o);
    say(`Files of this run (keys, logs): ${net.workDir} (removed at the end)`);
    const until = o.duration === null ? Infinity : Date.now() + o.duration * 1000;
    say(
      o.duration === null
        ? "\nThe network is up. Press Ctrl-C to stop it and remove everything."
        : `\nThe network stays up for ${o.duration} s, then everything is removed.`,
    );
    let lastReport = Date.now();
    while (Date.now() < until) {
      await sleep(Math.min(1000, until - Date.now()));
      if (Date.now() - lastReport >= 30_000) {
        lastReport = Date.now();
        const r = await net.reachability(net.nodes);
        const docs = await readStatuses(net);
        let tunnels = 0;
        for (const d of docs.values()) {
          tunnels += d?.tunnels.filter((x) => x.established && x.direction === "client").length ??
            0;
        }
        await Deno.writeTextFile(join(o.out, "re6st-demo.dot"), statusDot(net, docs));
        say(
          `  ${new Date().toISOString().slice(11, 19)}  ${r.reached}/${r.total} pairs ` +
            `reachable, ${tunnels} tunnels (topology file updated)`,
        );
      }
    }
  } finally {
    say("Stopping the nodes and the registry…");
    await net.stop();
  }
}

async function main(args: string[]): Promise<number> {
  let o: DemoOptions | null;
  try {
    o = parseArgs(args);
  } catch (e) {
    console.error(`demo: ${(e as Error).message}`);
    return 2;
  }
  if (!o) {
    say(HELP);
    return 0;
  }
  if (Deno.uid() !== 0) {
    console.error("demo: must run as root (it creates network namespaces): sudo scripts/demo");
    return 1;
  }
  // Ctrl-C: lab.ts kills every process, deletes every namespace and exits; the network's
  // temporary folder goes with the process's unload event.
  Deno.addSignalListener("SIGINT", () => say("\nCtrl-C: removing the demo network…"));
  const lab = await createLab("demo");
  try {
    await demo(o, lab);
    return 0;
  } catch (e) {
    const msg = describeError(e);
    console.error(`\ndemo: FAILED — ${msg}`);
    if (!(e instanceof NetworkError) && e instanceof Error && e.stack) console.error(e.stack);
    console.error(
      `Reproduce with: sudo scripts/demo --nodes ${o.nodes} --hello ${o.hello}` +
        " (set R6LAB_KEEP=1 to keep the logs)",
    );
    return 1;
  } finally {
    await lab.cleanup();
    say("Removed the namespaces, processes and temporary files of the demo.");
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
