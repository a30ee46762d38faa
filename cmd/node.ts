// `re6st node`: parse the options, build the node from the real parts, run it until a
// signal, and turn the way it ended into the exit status (PROTOCOL.md §7.1). A restart the node
// asks for (renewal, new network parameters) re-executes the program on disk, so that an
// upgrade installed meanwhile takes effect.
import { SOFTWARE_VERSION } from "../core/constants.ts";
import { describeError } from "../core/errors.ts";
import { createLogger } from "../core/log.ts";
import { Node, type NodeExit } from "../core/node/node.ts";
import { renderHelp } from "../core/options/help.ts";
import { NODE_SPEC, type NodeOptions, toNodeOptions } from "../core/options/node.ts";
import { LogFile } from "../platform/log_file.ts";
import { trimMemory } from "../platform/memory.ts";
import { realNodeParts } from "../platform/node_parts.ts";
import { replaceProcess, selfArgv } from "../platform/self.ts";
import { parseOrHelp } from "./common.ts";
import type { MetricsServer } from "./metrics.ts";
import { type Io, UsageError } from "./io.ts";

/** One line for `re6st --help`. */
export const summary = NODE_SPEC.summary;
/** The complete help of `re6st node`. */
export const help = renderHelp(NODE_SPEC);

/** Exit status after SIGHUP/SIGUSR2 (the reference exits with −1, §7.1). */
export const HANGUP_EXIT = 255;

/** Tells a re-executed node why it was restarted (read and removed at start). */
export const RESTART_REASON_ENV = "RE6ST_RESTARTED";

/** Runs `re6st node`; returns the exit code. */
export async function run(args: string[], io: Io): Promise<number> {
  // Like argparse's version action: printed before required options are checked.
  if (args.includes("-V") || args.includes("--version")) {
    io.out(`re6st ${SOFTWARE_VERSION} (protocol 10)`);
    return 0;
  }
  // The program on disk by the path it was started from: once an upgrade has replaced it,
  // the running executable's own path reads "… (deleted)".
  const again = [...selfArgv(), "node", ...args];
  let restarted = Deno.env.get(RESTART_REASON_ENV) ?? null;
  Deno.env.delete(RESTART_REASON_ENV);
  for (;;) {
    const parsed = parseOrHelp(NODE_SPEC, args, io);
    if (!parsed) return 0;
    if (parsed.test !== undefined) throw new UsageError("option --test is not supported");
    if (parsed.console !== undefined) throw new UsageError("option --console is not supported");
    const exit = await runOnce(toNodeOptions(parsed), io, restarted);
    if (exit.kind !== "restart") return exit.kind === "hangup" ? HANGUP_EXIT : 0;
    // Same pid and arguments, the program read again from disk; returns only on failure.
    Deno.env.set(RESTART_REASON_ENV, exit.reason);
    const error = replaceProcess(again);
    Deno.env.delete(RESTART_REASON_ENV);
    io.err(
      `re6st node: cannot run the program on disk again (${describeError(error)}); ` +
        "restarting in this process",
    );
    restarted = exit.reason;
  }
}

/**
 * When the node gives back the memory start-up used (platform/memory.ts): 30 s after start,
 * then at doubling intervals while the network around it settles, then every 5 minutes.
 */
const TRIM_AFTER_MS = 30_000;
const TRIM_EVERY_MS = 300_000;

/** Runs one life of the node with signal handling and its log file. */
async function runOnce(opts: NodeOptions, io: Io, restarted: string | null): Promise<NodeExit> {
  const logFile = new LogFile(`${opts.log}/re6stnet.log`, io);
  const log = createLogger(opts.verbose, (line) => logFile.write(line));
  if (restarted !== null) log.info(`Started again (${restarted})`);
  const node = new Node(opts, realNodeParts(opts, log));
  let metrics: MetricsServer | null = null;
  if (opts.metrics) {
    try {
      const { serveNodeMetrics } = await import("./metrics.ts"); // prom-client only when asked
      metrics = serveNodeMetrics(opts.metrics, () => node.status(), log.child("metrics"));
    } catch (e) {
      log.error(`Cannot run the node: ${describeError(e)}`);
      logFile.close();
      throw e;
    }
  }
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", () => node.stop("SIGINT")],
    ["SIGTERM", () => node.stop("SIGTERM")],
    ["SIGHUP", () => node.hangup("SIGHUP")],
    ["SIGUSR2", () => node.hangup("SIGUSR2")],
    ["SIGUSR1", () => {
      logFile.reopen();
      log.info(`Log file ${logFile.path} reopened (SIGUSR1)`);
    }],
  ];
  for (const [sig, fn] of handlers) Deno.addSignalListener(sig, fn);
  // Last resort: a rejection nobody handled (a bug) stops the node through its teardown
  // instead of killing the process with addresses, routes and children left behind.
  const unexpected: { seen: boolean; reason?: unknown } = { seen: false };
  const onUnhandled = (ev: PromiseRejectionEvent) => {
    ev.preventDefault();
    const r = ev.reason;
    log.error(
      `Unexpected error (a bug): ${describeError(r)}; ` +
        (unexpected.seen ? "already stopping" : "stopping the node cleanly"),
    );
    if (r instanceof Error && r.stack) log.debug(r.stack.replaceAll("\n", " | "));
    if (!unexpected.seen) Object.assign(unexpected, { seen: true, reason: r });
    node.stop("unexpected error");
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  const trim = () => {
    const { rssBefore, rssAfter } = trimMemory();
    const mib = (b: number) => (b / 1048576).toFixed(1);
    log.debug(`Memory given back to the system: resident ${mib(rssBefore)} → ${mib(rssAfter)} MiB`);
  };
  let trimTimer: ReturnType<typeof setTimeout> | undefined;
  const scheduleTrim = (delayMs: number) => {
    trimTimer = setTimeout(() => {
      trim();
      scheduleTrim(Math.min(2 * delayMs, TRIM_EVERY_MS));
    }, delayMs);
  };
  scheduleTrim(TRIM_AFTER_MS);
  try {
    const exit = await node.run();
    if (unexpected.seen) {
      throw new Error("the node stopped after an unexpected error", { cause: unexpected.reason });
    }
    if (exit.kind === "restart") {
      log.info(`Restarting (${exit.reason}): running the program on disk again`);
    }
    return exit;
  } catch (e) {
    log.error(`Cannot run the node: ${describeError(e)}`);
    throw e;
  } finally {
    clearTimeout(trimTimer);
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
    await metrics?.close();
    logFile.close();
  }
}
