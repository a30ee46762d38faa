import { cnFromPrefix } from "../addressing.ts";

/** One node of the network as the registry sees it. */
export interface NetworkNode {
  /** CN form, e.g. "6/16". */
  cn: string;
  /** "<software version>, <platform>" as answered to code 4, or null if it did not answer. */
  version: string | null;
  /** Whether it answered the topology crawl. */
  answered: boolean;
  /** CN forms of the nodes it connects to as a client. */
  clientOf: string[];
}

/** The network view printed by `re6st status --registry … --json`. */
export interface NetworkView {
  schema: 1;
  registry: string;
  /**
   * Whether the registry reads its node's routes (null: a registry without the `health`
   * method, such as the reference).
   */
  routes: { source: string; reachable: boolean; problem: string | null } | null;
  nodes: NetworkNode[];
}

function cnOrder(a: string, b: string): number {
  const [va, la] = a.split("/");
  const [vb, lb] = b.split("/");
  return Number(la) - Number(lb) ||
    (BigInt(va) < BigInt(vb) ? -1 : BigInt(va) > BigInt(vb) ? 1 : 0);
}

/** Builds the network view from the registry's `versions`, `topology` and `health` answers. */
export function networkView(
  registry: string,
  versions: Record<string, string | null>,
  topology: Record<string, string[]>,
  routes: NetworkView["routes"] = null,
): NetworkView {
  const nodes = new Map<string, NetworkNode>();
  const get = (cn: string) => {
    let n = nodes.get(cn);
    if (!n) nodes.set(cn, n = { cn, version: null, answered: false, clientOf: [] });
    return n;
  };
  for (const [bits, version] of Object.entries(versions)) get(cnFromPrefix(bits)).version = version;
  for (const cn of topology[""] ?? []) get(cn).answered = true;
  for (const [from, targets] of Object.entries(topology)) {
    if (from === "") continue;
    const node = get(from);
    for (const to of targets) {
      get(to);
      if (!node.clientOf.includes(to)) node.clientOf.push(to);
    }
  }
  const list = [...nodes.values()].sort((a, b) => cnOrder(a.cn, b.cn));
  for (const n of list) n.clientOf.sort(cnOrder);
  return { schema: 1, registry, routes, nodes: list };
}

/** Renders the network view as a table for people. */
export function renderNetwork(view: NetworkView): string {
  const rows = [["NODE", "ANSWERED", "VERSION", "TUNNELS TO"]];
  for (const n of view.nodes) {
    rows.push([n.cn, n.answered ? "yes" : "no", n.version ?? "-", n.clientOf.join(" ") || "-"]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  lines.push("", `${view.nodes.length} nodes known to ${view.registry}`);
  const problem = routesProblem(view);
  if (problem) lines.push(`PROBLEM: ${problem}`);
  return lines.join("\n");
}

/** What is wrong with the registry's view of its node's routes, in words, or null. */
export function routesProblem(view: NetworkView): string | null {
  const r = view.routes;
  if (!r || r.reachable) return null;
  return `the registry cannot read its node's routes from ${r.source} (${r.problem}): it ` +
    "offers only its own node to newcomers and sees only it here. Is its --run the run " +
    "folder of the node on its host, and is that node running?";
}

/** Renders the topology as a Graphviz digraph (client → server edges). */
export function renderDot(view: NetworkView): string {
  const lines = ["digraph re6st {", "  node [shape=box];"];
  for (const n of view.nodes) {
    const style = n.answered ? "" : ", style=dashed";
    lines.push(`  "${n.cn}" [label="${n.cn}${n.version ? "\\n" + n.version : ""}"${style}];`);
  }
  for (const n of view.nodes) {
    for (const to of n.clientOf) lines.push(`  "${n.cn}" -> "${to}";`);
  }
  lines.push("}");
  return lines.join("\n");
}
