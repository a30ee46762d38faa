// Supervision of the node's children (DESIGN.md: "the node never runs silently without
// routing"): an unexpected exit is logged with the child's last log lines and the child is
// started again with back-off.

import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { backoffDelays, type Clock } from "../clock.ts";
import type { ChildStatus } from "../status/document.ts";

/** How a child process ended. */
export interface ProcessExit {
  code: number;
  signal: string | null;
  /** Its last log lines (newest last). */
  lastLines: string[];
}

/** A running child process, as the platform starts it. */
export interface ManagedProcess {
  readonly pid: number;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<ProcessExit>;
  /** Asks it to stop (SIGTERM, then SIGKILL) and resolves once it has exited. */
  stop(graceMs?: number): Promise<ProcessExit>;
}

/** Options of {@link supervise}. */
export interface SuperviseOptions {
  /** For logs and status, e.g. "babeld" or "openvpn re6stnet-tcp". */
  name: string;
  /** Starts one instance; throws when it cannot start. */
  start(): Promise<ManagedProcess>;
  clock: Clock;
  log: Logger;
  /** First restart delay (default 1 s), doubled up to `maxDelayMs` (default 60 s). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** A child that ran this long is considered healthy again: back-off resets (default 60 s). */
  stableMs?: number;
  /** Grace before SIGKILL when stopping (default 5 s). */
  stopGraceMs?: number;
  /** Called after every (re)start, with the new process. */
  onStarted?(p: ManagedProcess, restart: boolean): void;
  /** Called after every unexpected exit. */
  onExit?(e: ProcessExit): void;
}

/** A supervised child. */
export interface Supervised {
  readonly name: string;
  /** Current process, if one runs. */
  readonly process: ManagedProcess | null;
  /** The child as the status document shows it. */
  info(): ChildStatus;
  /** First start: resolves once running, throws (and gives up) if the first start fails. */
  start(): Promise<void>;
  /** Stops supervising and stops the child; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops the child and starts it again at once (new configuration), logging `reason`; not
   * counted as a failure. Resolves once the new process runs (or supervision stopped).
   */
  restart(reason: string): Promise<void>;
}

/** Describes an exit: "exit code 1" / "signal SIGKILL". */
export function exitText(e: Pick<ProcessExit, "code" | "signal">): string {
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}

/** Creates a supervisor for one child (not started). */
export function supervise(o: SuperviseOptions): Supervised {
  const minDelay = o.minDelayMs ?? 1000;
  const maxDelay = o.maxDelayMs ?? 60_000;
  const stableMs = o.stableMs ?? 60_000;
  const stopCtrl = new AbortController();
  let current: ManagedProcess | null = null;
  let state: ChildStatus["state"] = "stopped";
  let restarts = 0;
  let lastExit: string | null = null;
  let since: number | null = null;
  let loop: Promise<void> | null = null;
  let delays = backoffDelays(minDelay, maxDelay);
  /** A restart asked for (restart()), with what to tell when the new process runs. */
  let asked: { reason: string; done: () => void } | null = null;

  const launch = async (restart: boolean) => {
    state = restart ? "restarting" : "starting";
    const p = await o.start();
    current = p;
    since = o.clock.now();
    state = "running";
    o.onStarted?.(p, restart);
    return p;
  };

  const watch = async (first: ManagedProcess) => {
    let p: ManagedProcess | null = first;
    while (!stopCtrl.signal.aborted) {
      if (p) {
        const startedAt = since ?? o.clock.now();
        const exit = await Promise.race([
          p.exited,
          new Promise<null>((r) => stopCtrl.signal.addEventListener("abort", () => r(null))),
        ]);
        if (exit === null || stopCtrl.signal.aborted) return;
        current = null;
        since = null;
        if (asked) {
          const a = asked;
          asked = null;
          try {
            p = await launch(true);
            o.log.info(`${o.name} restarted (pid ${p.pid}): ${a.reason}`);
          } catch (e) {
            p = null;
            lastExit = `cannot start: ${describeError(e)}`;
            o.log.error(`Cannot restart ${o.name} (${a.reason}): ${describeError(e)}; retrying`);
          }
          a.done();
          continue;
        }
        if (o.clock.now() - startedAt >= stableMs) delays = backoffDelays(minDelay, maxDelay);
        const last = exit.lastLines.filter((l) => l.trim()).slice(-5);
        lastExit = `${exitText(exit)}${last.length ? `: ${last.at(-1)}` : ""}`;
        o.onExit?.(exit);
        const delay = delays();
        state = "restarting";
        o.log.error(
          `${o.name} (pid ${p.pid}) exited unexpectedly (${exitText(exit)}); last log lines: ` +
            `${last.length ? last.join(" / ") : "(none)"}; restarting in ${delay / 1000} s`,
        );
        await o.clock.sleep(delay, stopCtrl.signal);
      }
      if (stopCtrl.signal.aborted) return;
      try {
        p = await launch(true);
        restarts++;
        o.log.info(`${o.name} restarted (pid ${p.pid}, restart ${restarts})`);
      } catch (e) {
        p = null;
        const delay = delays();
        state = "restarting";
        lastExit = `cannot start: ${describeError(e)}`;
        o.log.error(
          `Cannot restart ${o.name}: ${describeError(e)}; will retry in ${delay / 1000} s`,
        );
        await o.clock.sleep(delay, stopCtrl.signal);
      }
    }
  };

  return {
    name: o.name,
    get process() {
      return current;
    },
    info: () => ({
      name: o.name,
      pid: current?.pid ?? null,
      state,
      restarts,
      lastExit,
    }),
    async start() {
      if (loop) throw new Error(`${o.name} is already supervised`);
      let first: ManagedProcess;
      try {
        first = await launch(false);
      } catch (e) {
        state = "failed";
        throw e;
      }
      loop = watch(first);
    },
    async restart(reason) {
      const p = current;
      if (!p || stopCtrl.signal.aborted || asked) return;
      const done = new Promise<void>((resolve) => asked = { reason, done: resolve });
      await p.stop(o.stopGraceMs ?? 5000);
      await Promise.race([
        done,
        new Promise<void>((r) => stopCtrl.signal.addEventListener("abort", () => r())),
      ]);
    },
    async stop() {
      stopCtrl.abort();
      await loop;
      const p = current;
      current = null;
      since = null;
      if (p) await p.stop(o.stopGraceMs ?? 5000);
      if (state !== "failed") state = "stopped";
    },
  };
}
