/**
 * How this program runs itself again (OpenVPN calls it back as a hook, DESIGN.md).
 *
 * This is the ONE place where running from source (`deno run main.ts`) and running the
 * binary made by `deno compile` differ: from source the program is the Deno executable plus
 * `run -A --config <deno.json> <main.ts>`; compiled, it is the executable alone.
 */

import { fileURLToPath } from "node:url";

/** What decides how to run this program again; read from the process by {@link selfInfo}. */
export interface SelfInfo {
  /** True inside a binary made by `deno compile` (`Deno.build.standalone`). */
  standalone: boolean;
  /** Absolute path of the running executable (`Deno.execPath()`). */
  execPath: string;
  /** Absolute path of the entry point `main.ts` (source runs only). */
  mainPath: string;
  /** Absolute path of the project's `deno.json` (source runs only). */
  configPath: string;
  /** `DENO_DIR` of this process, if set (source runs use it to find their module cache). */
  denoDir?: string;
}

/** The facts about the current process that {@link selfArgv} needs. */
export function selfInfo(): SelfInfo {
  return {
    // Deno.build.standalone is set by `deno compile`; older runtimes lack it, but their
    // compiled main module lives under a virtual "deno-compile-<name>" folder.
    standalone: Deno.build.standalone === true || Deno.mainModule.includes("/deno-compile-"),
    execPath: Deno.execPath(),
    mainPath: fileURLToPath(new URL("../main.ts", import.meta.url)),
    configPath: fileURLToPath(new URL("../deno.json", import.meta.url)),
    denoDir: Deno.env.get("DENO_DIR"),
  };
}

/**
 * The argv prefix that runs this program (append a subcommand and its arguments):
 * `[deno, "run", "-A", "--config", deno.json, main.ts]` from source, `[binary]` compiled.
 */
export function selfArgv(info: SelfInfo = selfInfo()): string[] {
  if (info.standalone) return [info.execPath];
  // deno.json carries the import map, the lock file and the unstable "net" flag, so naming
  // it keeps the hook independent of the working folder OpenVPN runs it from.
  return [info.execPath, "run", "-A", "--config", info.configPath, info.mainPath];
}

/**
 * Environment the re-run needs when started by a program that clears the environment, as
 * OpenVPN does for its hooks: from source, Deno's cache folder and no update check.
 */
export function selfEnv(info: SelfInfo = selfInfo()): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  if (info.standalone) return env;
  env.DENO_NO_UPDATE_CHECK = "1";
  if (info.denoDir) env.DENO_DIR = info.denoDir;
  return env;
}
