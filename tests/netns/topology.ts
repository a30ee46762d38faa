/**
 * The underlay of the demo network and the network-lab scenarios: an IPv4 internet in
 * namespaces with a shared LAN segment, two routed subnets and one NATed subnet.
 *
 * ```
 *   subnet A 10.42.1.0/24 ── ra ─┐                 ┌─ rn ── NAT 10.42.3.0/24 (masquerade)
 *                                LAN 10.42.0.0/24 ─┤
 *   subnet B 10.42.2.0/24 ── rb ─┘  (n1 = registry) └─ LAN nodes
 * ```
 *
 * Nodes are named n1..nN; n1 sits on the LAN and hosts the registry. The others are spread
 * over the sites in the order A, NAT, B, LAN, A, NAT, … so that 4 nodes already cover every
 * site. These addresses only ever exist inside the lab's namespaces.
 */
import type { Lab } from "./lab.ts";

/** Where a node sits. */
export type Site = "lan" | "a" | "b" | "nat";

/** Fixed facts about a site: its subnet, its router, its segment (= interface) name. */
export interface SiteInfo {
  readonly subnet: string;
  /** Router joining the site to the LAN (none for the LAN itself). */
  readonly router: string | null;
  /** Segment name, also the name of the hosts' interface on it. */
  readonly segment: string;
  /** Host number of the router on the LAN (10.42.0.<n>). */
  readonly routerOnLan: number;
}

/** The sites of the lab network. */
export const SITES: Readonly<Record<Site, SiteInfo>> = {
  lan: { subnet: "10.42.0.0/24", router: null, segment: "lan", routerOnLan: 0 },
  a: { subnet: "10.42.1.0/24", router: "ra", segment: "suba", routerOnLan: 251 },
  b: { subnet: "10.42.2.0/24", router: "rb", segment: "subb", routerOnLan: 252 },
  nat: { subnet: "10.42.3.0/24", router: "rn", segment: "natn", routerOnLan: 253 },
};

const ORDER: readonly Site[] = ["a", "nat", "b", "lan"];

/** One node's place in the underlay. */
export interface Placement {
  /** Node and lab host name: n1, n2, … */
  readonly name: string;
  readonly site: Site;
  /** IPv4 address of the node on its segment. */
  readonly underlay: string;
  /** Name of that interface. */
  readonly iface: string;
}

/** The underlay that {@link buildTopology} made. */
export interface Topology {
  readonly nodes: readonly Placement[];
  /** Routers created (ra, rb, rn), only for sites that have nodes. */
  readonly routers: readonly string[];
  /** Underlay address of the registry host (n1). */
  readonly registryAddress: string;
}

function net24(subnet: string, host: number): string {
  return subnet.replace(/\.0\/24$/, `.${host}`);
}

/** Sites of n1..nN, in order (n1 always on the LAN). */
export function sitePlan(count: number): Site[] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`Invalid node count ${count}`);
  return Array.from({ length: count }, (_, i) => i === 0 ? "lan" : ORDER[(i - 1) % ORDER.length]);
}

/** Builds the underlay for `count` nodes in `lab`: hosts, segments, routes and the NAT. */
export async function buildTopology(lab: Lab, count: number): Promise<Topology> {
  const plan = sitePlan(count);
  const used = new Set(plan);
  const routed = (["a", "b", "nat"] as const).filter((s) => used.has(s));
  const nodes: Placement[] = [];
  const bySite = new Map<Site, string[]>();
  for (const [i, site] of plan.entries()) {
    const name = `n${i + 1}`;
    await lab.addHost(name);
    bySite.set(site, [...bySite.get(site) ?? [], name]);
  }
  for (const s of routed) await lab.addHost(SITES[s].router!);

  // The LAN: its nodes get .1, .2, … in order; routers their fixed numbers.
  const lanNodes = bySite.get("lan") ?? [];
  const lanRouters = routed.map((s) => SITES[s].router!);
  const lanPlan = [
    ...lanNodes.map((_, i) => `${net24(SITES.lan.subnet, i + 1)}/24`),
    ...routed.map((s) => `${net24(SITES.lan.subnet, SITES[s].routerOnLan)}/24`),
  ];
  const lan = await lab.segment("lan", [...lanNodes, ...lanRouters], { v4: lanPlan });
  const addr = new Map<string, { v4: string; iface: string }>();
  for (const e of lan.ends) addr.set(e.host, { v4: e.v4!, iface: e.iface });

  // Each routed subnet: router .1, nodes .2, .3, …
  for (const s of routed) {
    const info = SITES[s];
    const members = [info.router!, ...bySite.get(s)!];
    const seg = await lab.segment(info.segment, members, { v4: info.subnet });
    for (const e of seg.ends.slice(1)) addr.set(e.host, { v4: e.v4!, iface: e.iface });
  }

  // Routes: LAN hosts reach subnets A and B through their routers; subnet hosts use their
  // router as default; routers know each other's subnets. The NAT subnet is never routed to.
  const lanAddrOf = (s: Site) => net24(SITES.lan.subnet, SITES[s].routerOnLan);
  const publicSubnets = (["a", "b"] as const).filter((s) => used.has(s));
  for (const h of lanNodes) {
    for (const s of publicSubnets) await lab.route(h, SITES[s].subnet, lanAddrOf(s));
  }
  for (const s of routed) {
    const router = SITES[s].router!;
    for (const h of bySite.get(s)!) await lab.route(h, "default", net24(SITES[s].subnet, 1));
    for (const other of publicSubnets) {
      if (other !== s) await lab.route(router, SITES[other].subnet, lanAddrOf(other));
    }
  }
  if (used.has("nat")) await lab.nat(SITES.nat.router!, SITES.lan.segment);

  for (const [i, site] of plan.entries()) {
    const name = `n${i + 1}`;
    const a = addr.get(name)!;
    nodes.push({ name, site, underlay: a.v4, iface: a.iface });
  }
  return { nodes, routers: lanRouters, registryAddress: nodes[0].underlay };
}

/** Drops UDP forwarded out of the NATed subnet (the NAT router lets only TCP through). */
export async function blockNatUdp(lab: Lab): Promise<void> {
  const rules = [
    "table inet r6lab_noudp {",
    "  chain forward {",
    "    type filter hook forward priority filter - 10; policy accept;",
    `    iifname "${SITES.nat.segment}" meta l4proto udp counter drop`,
    "  }",
    "}",
    "",
  ].join("\n");
  await lab.host(SITES.nat.router!).runner.run(["nft", "-f", "-"], { stdin: rules });
}

/**
 * Cuts the underlay path between two nodes (drops every packet between their addresses in
 * `a`'s namespace); returns a function that mends it.
 */
export async function cutBetween(
  lab: Lab,
  a: Placement,
  b: Placement,
): Promise<() => Promise<void>> {
  const table = `r6lab_cut_${b.name}`;
  const rules = [
    `table ip ${table} {`,
    "  chain input {",
    "    type filter hook input priority filter - 10; policy accept;",
    `    ip saddr ${b.underlay} drop`,
    "  }",
    "  chain output {",
    "    type filter hook output priority filter - 10; policy accept;",
    `    ip daddr ${b.underlay} drop`,
    "  }",
    "}",
    "",
  ].join("\n");
  const runner = lab.host(a.name).runner;
  await runner.run(["nft", "-f", "-"], { stdin: rules });
  return async () => {
    await runner.run(["nft", "delete", "table", "ip", table], { ok: "any" });
  };
}
