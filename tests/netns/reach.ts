/**
 * All-pairs ping6 reachability between hosts of a lab: one `sh` per source host that pings
 * every target in parallel, so a full matrix of 12 nodes costs 12 process launches.
 */
import { CommandError } from "../../platform/runner.ts";
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
  const rows = await Promise.all(targets.map(async (src) => {
    const others = targets.filter((t) => t !== src);
    const answered = await pingFrom(lab, src, others, opts.timeoutS ?? 1);
    return targets.map((t) => t === src || answered.has(t.ip));
  }));
  const total = targets.length * (targets.length - 1);
  const reached = rows.reduce((n, row) => n + row.filter((x) => x).length, 0) - targets.length;
  return { names: targets.map((t) => t.name), ok: rows, reached, total, full: reached === total };
}

/** One ordered pair: `from` pings `to`. */
export interface ReachPair {
  readonly from: ReachTarget;
  readonly to: ReachTarget;
}

/** Pings each pair once (`timeoutS` each, one `sh` per source); returns those not answered. */
export async function missingOfPairs(
  lab: Lab,
  pairs: readonly ReachPair[],
  opts: { timeoutS?: number } = {},
): Promise<ReachPair[]> {
  const bySource = new Map<ReachTarget, ReachPair[]>();
  for (const p of pairs) bySource.set(p.from, [...bySource.get(p.from) ?? [], p]);
  const missing = await Promise.all([...bySource].map(async ([src, list]) => {
    const answered = await pingFrom(lab, src, list.map((p) => p.to), opts.timeoutS ?? 1);
    return list.filter((p) => !answered.has(p.to.ip));
  }));
  return missing.flat();
}

/** Pings `targets` from `src` in parallel, once each; returns the addresses that answered. */
async function pingFrom(
  lab: Lab,
  src: ReachTarget,
  targets: readonly ReachTarget[],
  timeoutS: number,
): Promise<Set<string>> {
  for (const t of [src, ...targets]) {
    if (!IP_RE.test(t.ip)) throw new Error(`Invalid address "${t.ip}" for ${t.name}`);
  }
  // -I: the node's own re6st address as source, whatever the kernel would pick; -w: each
  // ping ends after the timeout, even when its packet waits for a neighbour that is gone.
  const script = 'for t in "$@"; do (ping -n -q -c 1 -W "$W" -w "$W" -I "$S" "$t" >/dev/null ' +
    '2>&1 && echo "$t") & done; wait';
  let r;
  try {
    r = await lab.exec(src.host, ["sh", "-c", script, "sh", ...targets.map((t) => t.ip)], {
      env: { W: String(timeoutS), S: src.ip },
      timeoutMs: (timeoutS + 10) * 1000,
    });
  } catch (e) {
    // The host did not even finish its pings in time: nobody answered.
    if (e instanceof CommandError && /timed out/.test(e.message)) return new Set();
    throw e;
  }
  return new Set(r.stdout.split("\n").map((l) => l.trim()).filter((l) => l));
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
