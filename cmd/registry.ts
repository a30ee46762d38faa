import { renderHelp } from "../core/options/help.ts";
import { REGISTRY_SPEC, toRegistryOptions } from "../core/options/registry.ts";
import { parseOrHelp } from "./common.ts";
import type { Io } from "./io.ts";
import { runRegistryUntilSignal } from "./registry_daemon.ts";

/** One line for `re6st --help`. */
export const summary = REGISTRY_SPEC.summary;
/** The complete help of `re6st registry`. */
export const help = renderHelp(REGISTRY_SPEC);

/** Runs `re6st registry` until SIGINT/SIGTERM; returns the exit code. */
export function run(args: string[], io: Io): Promise<number> {
  const parsed = parseOrHelp(REGISTRY_SPEC, args, io);
  if (!parsed) return Promise.resolve(0);
  return runRegistryUntilSignal(toRegistryOptions(parsed), io);
}
