// nftables rules that drain a tunnel being retired (PROTOCOL.md §8.4.5 adapted, see
// core/node/tunnels/retirement.ts): Babel packets (UDP 6696, §8.5) are dropped in and out of
// the taps listed in a set of the node's own table.

import { BABEL_PORT } from "../core/constants.ts";

/** Implementation: the nftables table of the overlay (one per network namespace). */
export const DRAIN_TABLE = "re6st_drain";

/** Ruleset creating the (empty) table, for `nft -f -`; delete any old table first. */
export function drainRuleset(table = DRAIN_TABLE): string {
  return [
    `table inet ${table} {`,
    "  set taps { type ifname; }",
    "  chain input {",
    "    type filter hook input priority filter - 5; policy accept;",
    `    iifname @taps udp dport ${BABEL_PORT} drop`,
    "  }",
    "  chain output {",
    "    type filter hook output priority filter - 5; policy accept;",
    `    oifname @taps udp dport ${BABEL_PORT} drop`,
    "  }",
    "}",
    "",
  ].join("\n");
}

const IFNAME_RE = /^[A-Za-z0-9_.:-]{1,15}$/;

function checked(iface: string): string {
  if (!IFNAME_RE.test(iface)) throw new Error(`Invalid interface name ${JSON.stringify(iface)}`);
  return iface;
}

/** `nft` arguments adding a tap to the drained set. */
export function drainArgs(iface: string, table = DRAIN_TABLE): string[] {
  return ["add", "element", "inet", table, "taps", `{ ${checked(iface)} }`];
}

/** `nft` arguments removing a tap from the drained set. */
export function undrainArgs(iface: string, table = DRAIN_TABLE): string[] {
  return ["delete", "element", "inet", table, "taps", `{ ${checked(iface)} }`];
}

/** `nft` arguments deleting the table. */
export function dropTableArgs(table = DRAIN_TABLE): string[] {
  return ["delete", "table", "inet", table];
}
