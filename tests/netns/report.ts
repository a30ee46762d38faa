/**
 * Views of a lab network for people: per-node progress and summary tables and a Graphviz
 * topology built from the nodes' status documents (used by the demo and the benches).
 */
import type { StatusDocument } from "../../core/status/document.ts";
import type { NetNode, Network } from "./network.ts";
import type { Reachability } from "./reach.ts";
import { SITES } from "./topology.ts";

/** Status documents of nodes by node name (null: the node does not answer). */
export type Statuses = ReadonlyMap<string, StatusDocument | null>;

/** Reads the status of every node in parallel. */
export async function readStatuses(net: Network): Promise<Map<string, StatusDocument | null>> {
  const docs = await Promise.all(net.nodes.map((n) => net.status(n)));
  return new Map(net.nodes.map((n, i) => [n.name, docs[i]]));
}

/** Formats rows as left-aligned columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

function tunnels(doc: StatusDocument | null | undefined): string {
  if (!doc) return "-";
  const up = doc.tunnels.filter((t) => t.established);
  const out = up.filter((t) => t.direction === "client").length;
  return `${up.length} (${out} out, ${up.length - out} in)`;
}

function stateOf(n: NetNode, doc: StatusDocument | null | undefined): string {
  if (doc) return doc.state;
  if (n.process) return "starting";
  if (n.exit) return `exited (${n.exit.code})`;
  return "stopped";
}

function reachOf(r: Reachability | undefined, name: string): string {
  if (!r) return "-";
  const i = r.names.indexOf(name);
  if (i < 0) return "-";
  return `${r.ok[i].filter((x) => x).length - 1}/${r.names.length - 1}`;
}

/** One line per node: enrolled, state, tunnels, routes, how many others it reaches. */
export function progressTable(net: Network, docs: Statuses, reach?: Reachability): string {
  const rows = [["NODE", "SITE", "ENROLLED", "STATE", "TUNNELS", "ROUTES", "REACHES"]];
  for (const n of net.nodes) {
    const doc = docs.get(n.name);
    rows.push([
      n.name + (n.isRegistry ? "*" : ""),
      n.site,
      n.cn ? n.cn : "no",
      stateOf(n, doc),
      tunnels(doc),
      doc ? String(doc.babel.routes) : "-",
      reachOf(reach, n.name),
    ]);
  }
  return table(rows);
}

/** The summary: node, site, underlay address, re6st address, tunnels, routes. */
export function summaryTable(net: Network, docs: Statuses): string {
  const rows = [["NODE", "SITE", "UNDERLAY", "RE6ST ADDRESS", "TUNNELS", "ROUTES", "PEERS"]];
  for (const n of net.nodes) {
    const doc = docs.get(n.name);
    const peers = doc
      ? [...new Set(doc.tunnels.filter((t) => t.established).map((t) => peerName(net, t.peer)))]
        .join(",")
      : "-";
    rows.push([
      n.name + (n.isRegistry ? "*" : ""),
      n.site,
      n.underlay,
      n.ip ?? "-",
      tunnels(doc),
      doc ? String(doc.babel.routes) : "-",
      peers || "-",
    ]);
  }
  return table(rows) + "\n* registry's own node (the registry runs beside it)";
}

/** Node name of a peer CN, or the CN itself when unknown. */
export function peerName(net: Network, cn: string): string {
  return net.nodes.find((n) => n.cn === cn)?.name ?? cn;
}

const SITE_LABEL = {
  lan: `shared LAN ${SITES.lan.subnet}`,
  a: `routed subnet A ${SITES.a.subnet}`,
  b: `routed subnet B ${SITES.b.subnet}`,
  nat: `NATed subnet ${SITES.nat.subnet}`,
} as const;

/** Graphviz topology: one cluster per site, one edge per established client tunnel. */
export function statusDot(net: Network, docs: Statuses): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    "digraph re6st {",
    `  graph [label=${q(`re6st network ${net.network} — arrows: client → server tunnels`)}, ` +
    "labelloc=t, fontname=Helvetica];",
    "  node [shape=box, style=rounded, fontname=Helvetica];",
    "  edge [fontname=Helvetica, fontsize=10];",
  ];
  for (const site of ["lan", "a", "b", "nat"] as const) {
    const members = net.nodes.filter((n) => n.site === site);
    if (!members.length) continue;
    lines.push(`  subgraph cluster_${site} {`, `    label=${q(SITE_LABEL[site])};`);
    for (const n of members) {
      const label = `${n.name}${n.isRegistry ? " (registry)" : ""}\n${n.ip ?? "?"}\n${n.underlay}`;
      const style = docs.get(n.name) ? "" : ', style="rounded,dashed"';
      lines.push(`    ${q(n.name)} [label=${q(label)}${style}];`);
    }
    lines.push("  }");
  }
  for (const n of net.nodes) {
    const doc = docs.get(n.name);
    for (const t of doc?.tunnels ?? []) {
      if (t.direction !== "client" || !t.established) continue;
      lines.push(`  ${q(n.name)} -> ${q(peerName(net, t.peer))} [label=${q(t.protocol)}];`);
    }
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
