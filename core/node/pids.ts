// Process bookkeeping in the run folder, so that a node killed with -9 is cleaned up by the
// next start (its babeld and OpenVPN processes survive it), and two nodes never share a
// run folder.

import { describeError } from "../errors.ts";
import { runFile } from "../constants.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "../clock.ts";
import type { NodeFiles, NodeHost } from "./parts.ts";

/** File holding the node's pid. */

/** File listing the node's children: `<pid> <start time> <program name>` lines. */
export const CHILDREN_FILE = "children";

/** Programs a node runs with a file of its run folder on their command line. */
const STALE_PROGRAMS = ["babeld", "openvpn"];

/** Another node uses the same run folder. */
export class NodeRunningError extends Error {
  override name = "NodeRunningError";
}

/** A child of a node, as recorded in `<run>/children`. */
export interface PidLine {
  pid: number;
  /** Start time of the process ({@link NodeHost.processStart}): pids are reused, this is not. */
  start: string;
  name: string;
}

/** Parses `<pid> <start time> <name>` lines. */
export function parsePidLines(text: string): PidLine[] {
  const out: PidLine[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+) (\d+) (\S+)$/.exec(line.trim());
    if (m && Number(m[1]) > 1) out.push({ pid: Number(m[1]), start: m[2], name: m[3] });
  }
  return out;
}

/** Keeps `<run>/children` in step with the node's live children. */
export interface ChildRecord {
  /** Records a child just started; `name` is the program, for logs. */
  add(pid: number, name: string): Promise<void>;
  remove(pid: number): Promise<void>;
}

/**
 * Refuses to start when another live node owns `runDir`, stops the children a dead node
 * left (SIGTERM, SIGKILL after `graceMs`), then claims the folder for this node.
 */
export async function claimRunDir(
  runDir: string,
  files: NodeFiles,
  host: NodeHost,
  clock: Clock,
  log: Logger,
  graceMs = 3000,
): Promise<ChildRecord> {
  const pidPath = runFile(runDir, "pids");
  const childPath = `${runDir}/${CHILDREN_FILE}`;
  const owner = Number((await files.readText(pidPath))?.trim());
  if (Number.isInteger(owner) && owner > 1 && owner !== host.pid) {
    const name = await host.processName(owner);
    if (name !== null && /^(deno|re6st)/.test(name)) {
      throw new NodeRunningError(
        `Another node (pid ${owner}) uses the run folder ${runDir}; stop it first`,
      );
    }
  }
  const stale: PidLine[] = [];
  for (const c of parsePidLines((await files.readText(childPath)) ?? "")) {
    if ((await host.processStart(c.pid)) === c.start) stale.push(c);
  }
  // A kill -9 can land between a spawn and the update of the children file: babeld and
  // OpenVPN processes whose command line names a file of this run folder are ours too.
  for (const p of await host.listProcesses()) {
    if (p.pid === host.pid || stale.some((c) => c.pid === p.pid)) continue;
    const ours = p.cmdline.split(" ").some((arg) => arg.startsWith(`${runDir}/`));
    if (STALE_PROGRAMS.includes(p.name) && ours) stale.push(p);
  }
  if (stale.length) {
    log.warn(
      `Stopping ${stale.length} process(es) left by a previous run: ` +
        stale.map((c) => `${c.name} (pid ${c.pid})`).join(", "),
    );
    for (const c of stale) host.kill(c.pid, "SIGTERM");
    const deadline = clock.now() + graceMs;
    let alive = stale;
    for (;;) {
      const still = [];
      for (const c of alive) if ((await host.processStart(c.pid)) === c.start) still.push(c);
      alive = still;
      if (!alive.length || clock.now() >= deadline) break;
      await clock.sleep(100);
    }
    for (const c of alive) host.kill(c.pid, "SIGKILL");
  }
  await files.writeText(pidPath, `${host.pid}\n`);
  const live = new Map<number, PidLine>();
  let writing = Promise.resolve();
  const save = () => {
    const text = [...live.values()].map((c) => `${c.pid} ${c.start} ${c.name}\n`).join("");
    writing = writing.then(() => files.writeText(childPath, text)).catch((e) =>
      log.warn(`Cannot update ${childPath}: ${describeError(e)}`)
    );
    return writing;
  };
  await save();
  return {
    async add(pid, name) {
      const start = await host.processStart(pid);
      if (start === null) return;
      live.set(pid, { pid, start, name: name.replace(/\s+/g, "_") || "?" });
      await save();
    },
    async remove(pid) {
      if (live.delete(pid)) await save();
    },
  };
}
