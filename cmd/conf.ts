import { renderHelp } from "../core/options/help.ts";
import { CONF_SPEC, toConfOptions } from "../core/options/conf.ts";
import { runConf } from "../core/conf/enroll.ts";
import { realConfFiles } from "../platform/files.ts";
import { createRunner } from "../platform/runner.ts";
import { parseOrHelp } from "./common.ts";
import type { Io } from "./io.ts";

/** One line for `re6st --help`. */
export const summary = CONF_SPEC.summary;
/** The complete help of `re6st conf`. */
export const help = renderHelp(CONF_SPEC);

/** Runs `re6st conf`; returns the exit code. */
export function run(args: string[], io: Io): Promise<number> {
  const parsed = parseOrHelp(CONF_SPEC, args, io);
  if (!parsed) return Promise.resolve(0);
  const opts = toConfOptions(parsed);
  return runConf(opts, io, { files: realConfFiles(), runner: createRunner() });
}
