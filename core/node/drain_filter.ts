// nftables rules that drain a tunnel (see tunnel_clients.ts): Babel packets (UDP 6696,
// PROTOCOL.md §8.5) are dropped in and out of the taps listed in a set. Only the text of the
// commands lives here; platform/overlay.ts runs them with `nft` in the node's namespace.

import { BABEL_PORT } from "../constants.ts";

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
