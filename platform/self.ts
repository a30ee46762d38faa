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

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  7: "E2BIG",
  8: "ENOEXEC",
  12: "ENOMEM",
  13: "EACCES",
  20: "ENOTDIR",
  26: "ETXTBSY",
};

const LIBC_EXEC = {
  execv: { parameters: ["buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/**
 * Replaces this process with `argv` (execv(2) through libc): same pid, same environment and
 * working folder, the program read again from disk. Returns only when that failed, with why.
 */
export function replaceProcess(argv: readonly string[]): Error {
  let libc: Deno.DynamicLibrary<typeof LIBC_EXEC>;
  try {
    libc = Deno.dlopen("libc.so.6", LIBC_EXEC);
  } catch (cause) {
    return new Error("cannot load libc.so.6 to call execv", { cause });
  }
  const enc = new TextEncoder();
  const strings = argv.map((a) => enc.encode(a + "\0"));
  const pointers = new BigUint64Array(strings.length + 1); // NULL-terminated char *argv[]
  strings.forEach((s, i) => {
    pointers[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s)));
  });
  libc.symbols.execv(strings[0], new Uint8Array(pointers.buffer));
  // Still here: execv failed.
  const where = libc.symbols.__errno_location();
  const errno = where ? new Deno.UnsafePointerView(where).getInt32() : 0;
  libc.close();
  return new Error(`execv "${argv[0]}" failed: ${ERRNO_NAMES[errno] ?? `errno ${errno}`}`);
}
