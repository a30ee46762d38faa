/**
 * All-pairs ping6 reachability between hosts of a lab: one `sh` per source host that pings
 * every target in parallel, so a full matrix of 12 nodes costs 12 process launches.
 */
import type { Lab } from "./lab.ts";

/** A host taking part in a reachability check, and the address to ping it at. */
export interface ReachTarget {
  readonly name: string;
  /** Lab host the pings are sent from. */
  readonly host: string;
  /** Address pinged (and used as source with -I). */
  readonly ip: string;
}

/** The result of one all-pairs check. */
export interface Reachability {
  /** Row and column labels, in order. */
  readonly names: readonly string[];
  /** `ok[i][j]`: a reply from `names[j]` came back to `names[i]` (diagonal: true). */
  readonly ok: readonly (readonly boolean[])[];
  /** Pairs (i ≠ j) that answered. */
  readonly reached: number;
  /** Pairs (i ≠ j) tried. */
  readonly total: number;
  /** Every pair answered. */
  readonly full: boolean;
}

const IP_RE = /^[0-9a-f:.]+$/i;

/** Pings every target from every source once (`timeoutS` each) and returns the matrix. */
export async function measureReachability(
  lab: Lab,
  targets: readonly ReachTarget[],
  opts: { timeoutS?: number } = {},
): Promise<Reachability> {
  const w = String(opts.timeoutS ?? 1);
  for (const t of targets) {
    if (!IP_RE.test(t.ip)) throw new Error(`Invalid address "${t.ip}" for ${t.name}`);
  }
  const rows = await Promise.all(targets.map(async (src) => {
    const others = targets.filter((t) => t !== src).map((t) => t.ip);
    // -I: the node's own re6st address as source, whatever the kernel would pick.
    const script = 'for t in "$@"; do (ping -n -q -c 1 -W "$W" -I "$S" "$t" >/dev/null 2>&1 ' +
      '&& echo "$t") & done; wait';
    const r = await lab.exec(src.host, ["sh", "-c", script, "sh", ...others], {
      env: { W: w, S: src.ip },
      timeoutMs: (Number(w) + 10) * 1000,
    });
    const answered = new Set(r.stdout.split("\n").map((l) => l.trim()).filter((l) => l));
    return targets.map((t) => t === src || answered.has(t.ip));
  }));
  const total = targets.length * (targets.length - 1);
  const reached = rows.reduce((n, row) => n + row.filter((x) => x).length, 0) - targets.length;
  return { names: targets.map((t) => t.name), ok: rows, reached, total, full: reached === total };
}

/** Renders a reachability matrix for people ("✓" reached, "✗" not, rows ping columns). */
export function renderMatrix(r: Reachability): string {
  const w = Math.max(4, ...r.names.map((n) => n.length)) + 1;
  const lines = [
    "from\\to".padEnd(w) + r.names.map((n) => n.padStart(w)).join(""),
    ...r.names.map((n, i) =>
      n.padEnd(w) +
      r.ok[i].map((ok, j) => (i === j ? "·" : ok ? "✓" : "✗").padStart(w)).join("")
    ),
    `${r.reached}/${r.total} pairs reachable${r.full ? " (all)" : ""}`,
  ];
  return lines.join("\n");
}

/** The pairs that did not answer, as "a→b" strings (at most `max`, then "…"). */
export function missingPairs(r: Reachability, max = 12): string[] {
  const out: string[] = [];
  for (const [i, row] of r.ok.entries()) {
    for (const [j, ok] of row.entries()) if (!ok) out.push(`${r.names[i]}→${r.names[j]}`);
  }
  return out.length > max ? [...out.slice(0, max), `… ${out.length - max} more`] : out;
}
