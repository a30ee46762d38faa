// The operator's commands (PROTOCOL.md §8.6): `--up` runs once the node is up (its failure
// stops the node), `--daemon` commands run in the background until the node stops; both get
// the re6stnet_* environment (settings.ts nodeEnvironment).

import type { Logger } from "../log.ts";
import type { NodeShell } from "./parts.ts";
import { unlessStopped } from "./registry_sync.ts";
import type { ManagedProcess } from "./supervisor.ts";

/** Runs `--up`; throws when it fails or the node is asked to stop meanwhile. */
export async function runUp(
  shell: NodeShell,
  cmd: string,
  env: Record<string, string>,
  stop: AbortSignal,
  log: Logger,
): Promise<void> {
  log.info(`Running --up command: ${cmd}`);
  const code = await unlessStopped(shell.run(cmd, env, stop), stop);
  if (code !== 0) throw new Error(`--up command failed with exit code ${code}: ${cmd}`);
}

/** Starts the `--daemon` commands; one warning when one ends before the node stops. */
export function startDaemons(
  shell: NodeShell,
  cmds: readonly string[],
  env: Record<string, string>,
  stop: AbortSignal,
  log: Logger,
): ManagedProcess[] {
  return cmds.map((cmd) => {
    const d = shell.spawn(cmd, env);
    log.info(`Started --daemon command (pid ${d.pid}): ${cmd}`);
    d.exited.then((e) => {
      if (!stop.aborted) {
        log.warn(`--daemon command (pid ${d.pid}) exited (code ${e.code}): ${cmd}`);
      }
    });
    return d;
  });
}
