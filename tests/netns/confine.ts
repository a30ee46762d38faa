/**
 * Runs a command confined the way the systemd units in packaging/ confine the node and the
 * registry, without systemd: only the unit's capabilities (its CapabilityBoundingSet=), no new
 * privileges (NoNewPrivileges=), and every file system read-only but /dev, /proc, /sys, /tmp
 * and the folder it may write (ProtectSystem=strict with its writable folders; PrivateTmp=
 * gives the services a writable /tmp of their own, which OpenVPN needs). Used by netns tests,
 * so that a change needing more than the units allow fails a test instead of a deployment.
 */
import { createRunner } from "../../platform/runner.ts";

/** A unit file of packaging/, by name (e.g. "re6st-node.service"). */
export function readUnit(name: string): Promise<string> {
  return Deno.readTextFile(new URL(`../../packaging/${name}`, import.meta.url));
}

/** The capabilities a unit keeps, from its CapabilityBoundingSet= ("net_admin", …). */
export function unitCapabilities(unit: string): string[] {
  const lines = unit.split("\n").filter((l) => l.startsWith("CapabilityBoundingSet="));
  if (lines.length !== 1) throw new Error("A unit needs exactly one CapabilityBoundingSet= line");
  return lines[0].slice("CapabilityBoundingSet=".length).trim().split(/\s+/)
    .map((c) => c.replace(/^CAP_/, "").toLowerCase());
}

// In a new mount namespace: make every mount read-only but the API file systems, /tmp and
// the writable folder (each made a mount of its own first), then drop capabilities and new
// privileges.
const SCRIPT = `set -e
w=$1 caps=$2; shift 2
mount --bind /tmp /tmp
mount --bind "$w" "$w"
for m in $(findmnt -rn -o TARGET | sort -u); do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/tmp|/tmp/*|"$w"|"$w"/*) continue ;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
exec setpriv --inh-caps=-all --bounding-set="-all$caps" --no-new-privs "$@"`;

/** `argv` run with only `caps` ("net_admin", …), writing only below `writable`. */
export function confinedArgv(argv: readonly string[], caps: readonly string[], writable: string) {
  const keep = caps.map((c) => `,+${c}`).join("");
  return ["unshare", "-m", "--propagation", "private", "sh", "-c", SCRIPT, "confine"]
    .concat([writable, keep, ...argv]);
}

/** What confines a running process: its effective capabilities and whether it sees / read-only. */
export async function confinementOf(
  pid: number,
): Promise<{ caps: string[]; rootReadOnly: boolean }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (!hex) throw new Error(`No CapEff in /proc/${pid}/status`);
  const r = await createRunner().run(["capsh", `--decode=${hex}`]);
  const caps = r.stdout.trim().split("=")[1]?.split(",").filter((c) => c) ?? [];
  const mounts = await Deno.readTextFile(`/proc/${pid}/mountinfo`);
  return {
    caps: caps.map((c) => c.replace(/^cap_/, "")).sort(),
    rootReadOnly: /^\d+ \d+ \S+ \S+ \/ ro[, ]/m.test(mounts),
  };
}
