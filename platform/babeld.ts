// Runs one babeld (stock 1.12.1) with a configuration built by core/babel/config.ts.

import { describeError } from "../core/errors.ts";
import type { BabelConfig } from "../core/babel/config.ts";
import type { Logger } from "../core/log.ts";
import { babelSocketAnswers } from "./babel_socket.ts";
import type { Child, Runner } from "./runner.ts";

/** Options of {@link startBabeld}. */
export interface BabeldOptions {
  /** Runs the program (bound to the node's network namespace, if any). */
  runner: Runner;
  config: BabelConfig;
  /** Program to run (default "babeld", i.e. /usr/sbin/babeld). */
  program?: string;
  log?: Logger;
  /** How long babeld has to open its socket (default 10 s). */
  startTimeoutMs?: number;
}

/** How babeld ended. */
export interface BabeldExit {
  code: number;
  signal: string | null;
  /** True when {@link Babeld.stop} asked for it. */
  requested: boolean;
  /** Last lines babeld wrote to its log during this run. */
  lastLog: string[];
}

/** A running babeld. */
export interface Babeld {
  readonly pid: number;
  /** Path of its local socket. */
  readonly socket: string;
  /** Resolves when babeld has exited, for whatever reason. */
  readonly exited: Promise<BabeldExit>;
  /** SIGTERM (babeld retracts its routes, then exits), SIGKILL after `graceMs` (default 5 s). */
  stop(graceMs?: number): Promise<BabeldExit>;
}

/** babeld did not start or refused its configuration. */
export class BabeldError extends Error {
  override name = "BabeldError";
  constructor(message: string, readonly lastLog: string[] = [], options?: ErrorOptions) {
    super(lastLog.length ? `${message}; babeld log: ${lastLog.join(" / ")}` : message, options);
  }
}

const TAIL_BYTES = 16 * 1024;

/** Last `count` lines of `path` written after byte `from` (empty if unreadable). */
export async function readLogTail(path: string, from = 0, count = 15): Promise<string[]> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch {
    return [];
  }
  try {
    const size = (await f.stat()).size;
    const start = Math.max(from, size - TAIL_BYTES);
    if (size <= start) return [];
    await f.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let off = 0;
    while (off < buf.length) {
      const n = await f.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    const lines = new TextDecoder().decode(buf.subarray(0, off)).split("\n").filter((l) => l);
    if (start > from) lines.shift(); // probably cut in the middle
    return lines.slice(-count);
  } finally {
    f.close();
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Writes the configuration file (mode 0600), removes a stale socket, starts babeld and
 * waits until its local socket answers.
 */
export async function startBabeld(opts: BabeldOptions): Promise<Babeld> {
  const { config, runner, log } = opts;
  const { paths } = config;
  const program = opts.program ?? "babeld";
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;

  if (await babelSocketAnswers(paths.socket)) {
    throw new BabeldError(`A babeld already answers on ${paths.socket}; is another node running?`);
  }
  await removeIfExists(paths.socket); // left by a babeld that was killed

  try {
    await Deno.writeTextFile(paths.config, config.configText, { mode: 0o600 });
    await Deno.chmod(paths.config, 0o600);
  } catch (e) {
    throw new BabeldError(
      `Cannot write babeld configuration ${paths.config}: ${describeError(e)}`,
      [],
      {
        cause: e,
      },
    );
  }

  const logStart = await fileSize(paths.log);
  const argv = [program, ...config.args];
  let child: Child;
  try {
    child = runner.spawn(argv, {
      stdout: { append: paths.log },
      stderr: { append: paths.log },
    });
  } catch (e) {
    throw new BabeldError(`Cannot start ${program}: ${describeError(e)}`, [], { cause: e });
  }
  log?.debug(`Started babeld (pid ${child.pid}): ${argv.join(" ")}`);

  let requested = false;
  let hasExited = false;
  const exited = child.status.then(async (s): Promise<BabeldExit> => {
    hasExited = true;
    const lastLog = await readLogTail(paths.log, logStart);
    // A babeld killed by SIGKILL leaves its socket behind.
    await removeIfExists(paths.socket).catch(() => {});
    const exit = { code: s.code, signal: s.signal, requested, lastLog };
    const how = s.signal ? `signal ${s.signal}` : `code ${s.code}`;
    if (requested) log?.info(`babeld (pid ${child.pid}) stopped (${how})`);
    else {
      log?.error(
        `babeld (pid ${child.pid}) exited unexpectedly (${how}); last log lines: ` +
          (lastLog.join(" / ") || "(none)"),
      );
    }
    return exit;
  });

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (hasExited) {
      const e = await exited;
      throw new BabeldError(
        `babeld exited during start-up (${e.signal ? `signal ${e.signal}` : `code ${e.code}`})`,
        e.lastLog,
      );
    }
    if (await babelSocketAnswers(paths.socket, 500)) break;
    if (Date.now() > deadline) {
      requested = true;
      await child.stop(1000);
      const e = await exited;
      throw new BabeldError(
        `babeld did not open ${paths.socket} within ${startTimeoutMs} ms`,
        e.lastLog,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  log?.info(`babeld running (pid ${child.pid}), local socket ${paths.socket}`);

  return {
    pid: child.pid,
    socket: paths.socket,
    exited,
    async stop(graceMs = 5000) {
      if (!hasExited) {
        requested = true;
        await child.stop(graceMs);
      }
      return await exited;
    },
  };
}
