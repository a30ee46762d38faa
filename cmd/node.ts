import { renderHelp } from "../core/options/help.ts";
import { NODE_SPEC, toNodeOptions } from "../core/options/node.ts";
import { notYet, parseOrHelp } from "./common.ts";
import type { Io } from "./io.ts";

/** One line for `re6st --help`. */
export const summary = NODE_SPEC.summary;
/** The complete help of `re6st node`. */
export const help = renderHelp(NODE_SPEC);

/** Runs `re6st node`; returns the exit code. */
export function run(args: string[], io: Io): Promise<number> {
  const parsed = parseOrHelp(NODE_SPEC, args, io);
  if (!parsed) return Promise.resolve(0);
  toNodeOptions(parsed);
  return Promise.resolve(notYet(io, "re6st node"));
}
