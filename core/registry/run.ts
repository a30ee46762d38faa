// Running the registry as a daemon: log file (reopened on SIGUSR1), clean stop on SIGTERM
// and SIGINT (PROTOCOL.md §9.3). cmd/registry.ts only parses options and calls this.

import { describeError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { LogFile } from "../../platform/log_file.ts";
import {
  type RegistryConfig,
  type ResolvedRegistryConfig,
  resolveRegistryConfig,
} from "./config.ts";
import { type RegistryDeps, startRegistry } from "./server.ts";

/** Where the daemon reports what it cannot log (e.g. the log file cannot be opened). */
export interface DaemonIo {
  err(text: string): void;
}

/**
 * Starts the registry and runs it until SIGTERM/SIGINT (clean stop, 0) or a fatal error (1);
 * SIGUSR1 reopens the log file. Returns the exit code.
 */
export async function runRegistryUntilSignal(
  config: RegistryConfig,
  io: DaemonIo,
  deps: RegistryDeps = {},
): Promise<number> {
  let resolved: ResolvedRegistryConfig;
  let logFile: LogFile;
  try {
    resolved = resolveRegistryConfig(config);
    logFile = new LogFile(resolved.logfile, io, { required: true });
  } catch (e) {
    io.err(describeError(e));
    return 1;
  }
  const log = deps.log ?? createLogger(resolved.verbose, (l) => logFile.write(l));
  let running;
  try {
    running = await startRegistry(resolved, { ...deps, log });
  } catch (e) {
    const msg = `Cannot start the registry: ${describeError(e)}`;
    log.error(msg);
    io.err(msg);
    logFile.close();
    return 1;
  }
  const handlers: [Deno.Signal, () => void][] = [];
  const on = (sig: Deno.Signal, fn: () => void) => {
    Deno.addSignalListener(sig, fn);
    handlers.push([sig, fn]);
  };
  const stop = (sig: string) => () => {
    log.info(`Received ${sig}: stopping`);
    void running.stop();
  };
  on("SIGTERM", stop("SIGTERM"));
  on("SIGINT", stop("SIGINT"));
  on("SIGUSR1", () => {
    if (logFile.reopen()) log.info("Log file reopened (SIGUSR1)");
  });
  let code = 0;
  try {
    await running.finished;
    log.info("Registry stopped");
  } catch (e) {
    io.err(`Registry stopped: ${describeError(e)}`);
    code = 1;
  } finally {
    for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
    logFile.close();
  }
  return code;
}
