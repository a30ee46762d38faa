import { renderHelp } from "../core/options/help.ts";
import { parseCommandLine, type ParsedOptions } from "../core/options/parser.ts";
import type { CommandSpec } from "../core/options/spec.ts";
import type { Io } from "./io.ts";

/** Option files are read from the real file system, relative to the working folder. */
export const processFiles = {
  readTextFile: (path: string) => Deno.readTextFileSync(path),
  get cwd() {
    return Deno.cwd();
  },
};

/** Parses a subcommand's arguments; prints --help and returns null when help was asked. */
export function parseOrHelp(spec: CommandSpec, args: string[], io: Io): ParsedOptions | null {
  const parsed = parseCommandLine(spec, args, processFiles);
  if (parsed.help) {
    io.out(renderHelp(spec));
    return null;
  }
  return parsed;
}
