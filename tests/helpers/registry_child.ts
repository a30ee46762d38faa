// A registry in its own process for tests (tests/helpers/registry_proc.ts): started with a
// config and options, optionally under prlimit or another umask, waited for, reaped.

import { fileURLToPath } from "node:url";
import { waitFor } from "../netns/lab.ts";

const PROC = fileURLToPath(new URL("./registry_proc.ts", import.meta.url));

/** A free TCP port on 127.0.0.1 (for a child that must be told its port). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** How to run the child: a file-descriptor limit, a umask. */
export interface ChildOptions {
  /** Soft and hard limit of open files (through prlimit). */
  nofile?: number;
  /** umask of the child (through sh), e.g. "000". */
  umask?: string;
}

/** Starts `registry_proc.ts` with `config` and its `opts`; stderr is piped, stdout dropped. */
export function spawnRegistry(
  config: object,
  opts: object = {},
  how: ChildOptions = {},
): Deno.ChildProcess {
  let cmd = [Deno.execPath(), "run", "-A", "--unstable-net", PROC];
  cmd.push(JSON.stringify(config), JSON.stringify(opts));
  if (how.nofile) cmd = ["prlimit", `--nofile=${how.nofile}:${how.nofile}`, "--", ...cmd];
  if (how.umask) cmd = ["sh", "-c", `umask ${how.umask} && exec "$@"`, "sh", ...cmd];
  return new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "piped" })
    .spawn();
}

/** Kills the registry process if it still runs and releases its stderr pipe. */
export async function reap(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // already exited
  }
  await child.status;
  await child.stderr.cancel().catch(() => {});
}

/** Waits until the registry on `port` answers getCa. */
export async function waitReady(port: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/getCa`);
      await r.body?.cancel();
      return r.status === 200;
    } catch {
      return false;
    }
  }, { what: `the registry on port ${port} answering getCa`, timeoutMs, intervalMs: 50 });
}
