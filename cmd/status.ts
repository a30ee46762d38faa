import { renderHelp } from "../core/options/help.ts";
import { STATUS_SPEC, toStatusOptions } from "../core/options/status.ts";
import { notYet, parseOrHelp } from "./common.ts";
import type { Io } from "./io.ts";

/** One line for `re6st --help`. */
export const summary = STATUS_SPEC.summary;
/** The complete help of `re6st status`. */
export const help = renderHelp(STATUS_SPEC);

/** Runs `re6st status`; returns the exit code. */
export function run(args: string[], io: Io): Promise<number> {
  const parsed = parseOrHelp(STATUS_SPEC, args, io);
  if (!parsed) return Promise.resolve(0);
  toStatusOptions(parsed);
  return Promise.resolve(notYet(io, "re6st status"));
}
