import { renderHelp } from "../core/options/help.ts";
import { REGISTRY_SPEC, toRegistryOptions } from "../core/options/registry.ts";
import { parseOrHelp } from "./common.ts";
import type { Io } from "./io.ts";
import { stopSignals } from "./stop_signals.ts";

/** One line for `re6st --help`. */
export const summary = REGISTRY_SPEC.summary;
/** The complete help of `re6st registry`. */
export const help = renderHelp(REGISTRY_SPEC);

/**
 * Runs `re6st registry` until SIGINT/SIGTERM; returns the exit code. Stop signals are handled
 * before the daemon's modules load (only here, so that other commands do not carry them).
 */
export async function run(args: string[], io: Io): Promise<number> {
  const signals = stopSignals();
  try {
    const parsed = parseOrHelp(REGISTRY_SPEC, args, io);
    if (!parsed) {
      signals.remove();
      return 0;
    }
    const options = toRegistryOptions(parsed);
    const { runRegistryUntilSignal } = await import("./registry_daemon.ts");
    return await runRegistryUntilSignal(options, io, {}, signals);
  } catch (e) {
    signals.remove();
    throw e;
  }
}
