// `re6st node`: parse the options, build the node from the real parts, run it until a
// signal, and turn the way it ended into the exit status (PROTOCOL.md §7.1).
import { describeError } from "../core/errors.ts";
import { createBabelClient } from "../core/babel/local.ts";
import { SOFTWARE_VERSION } from "../core/constants.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { openCacheFile } from "../core/node/cache.ts";
import { overlayTunnels } from "../core/node/overlay.ts";
import { systemClock } from "../core/clock.ts";
import { Node, type NodeExit } from "../core/node/daemon.ts";
import type { Identity } from "../core/node/identity.ts";
import type { NodeFiles, NodeParts } from "../core/node/parts.ts";
import type { ManagedProcess } from "../core/node/supervisor.ts";
import { renderHelp } from "../core/options/help.ts";
import { NODE_SPEC, type NodeOptions, toNodeOptions } from "../core/options/node.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { unixConnector } from "../platform/babel_socket.ts";
import { startBabeld } from "../platform/babeld.ts";
import { serveControl } from "../platform/control.ts";
import { startHookServer, writeHookScript } from "../platform/hook_server.ts";
import { createLinuxPlatform } from "../platform/linux.ts";
import { LogFile } from "../platform/log_file.ts";
import { startOpenVpn } from "../platform/openvpn.ts";
import { realOverlayParts } from "../platform/overlay.ts";
import { createRunner, type Runner } from "../platform/runner.ts";
import { selfArgv, selfEnv } from "../platform/self.ts";
import { openPrivateDatabase } from "../platform/sqlite_file.ts";
import { parseOrHelp } from "./common.ts";
import { type Io, UsageError } from "./io.ts";

/** One line for `re6st --help`. */
export const summary = NODE_SPEC.summary;
/** The complete help of `re6st node`. */
export const help = renderHelp(NODE_SPEC);

/** Exit status after SIGHUP/SIGUSR2 (the reference exits with −1, §7.1). */
export const HANGUP_EXIT = 255;

/** Runs `re6st node`; returns the exit code. */
export async function run(args: string[], io: Io): Promise<number> {
  // Like argparse's version action: printed before required options are checked.
  if (args.includes("-V") || args.includes("--version")) {
    io.out(`re6st ${SOFTWARE_VERSION} (protocol 10)`);
    return 0;
  }
  for (;;) {
    const parsed = parseOrHelp(NODE_SPEC, args, io);
    if (!parsed) return 0;
    if (parsed.test !== undefined) throw new UsageError("option --test is not supported");
    if (parsed.console !== undefined) throw new UsageError("option --console is not supported");
    const exit = await runOnce(toNodeOptions(parsed), io);
    if (exit.kind === "restart") continue; // same argv, everything loaded again
    return exit.kind === "hangup" ? HANGUP_EXIT : 0;
  }
}

/** Runs one life of the node with signal handling and its log file. */
async function runOnce(opts: NodeOptions, io: Io): Promise<NodeExit> {
  const logFile = new LogFile(`${opts.log}/re6stnet.log`, io);
  const log = createLogger(opts.verbose, (line) => logFile.write(line));
  const node = new Node(opts, realParts(opts, log));
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
      `Unexpected error (a bug): ${r instanceof Error ? r.message : r}; ` +
        (unexpected.seen ? "already stopping" : "stopping the node cleanly"),
    );
    if (r instanceof Error && r.stack) log.debug(r.stack.replaceAll("\n", " | "));
    if (!unexpected.seen) Object.assign(unexpected, { seen: true, reason: r });
    node.stop("unexpected error");
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    const exit = await node.run();
    if (unexpected.seen) {
      throw new Error("the node stopped after an unexpected error", { cause: unexpected.reason });
    }
    if (exit.kind === "restart") log.info(`Restarting: ${exit.reason}`);
    return exit;
  } catch (e) {
    log.error(`Cannot run the node: ${describeError(e)}`);
    throw e;
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
    logFile.close();
  }
}

function asManaged<E>(
  p: { pid: number; exited: Promise<E>; stop(g?: number): Promise<E> },
  map: (e: E) => { code: number; signal: string | null; lastLines: string[] },
): ManagedProcess {
  return {
    pid: p.pid,
    exited: p.exited.then(map),
    stop: (g) => p.stop(g).then(map),
  };
}

function spawned(runner: Runner, argv: string[], env: Record<string, string>): ManagedProcess {
  const c = runner.spawn(argv, { env, stdout: "inherit", stderr: "inherit", processGroup: true });
  const map = (s: { code: number; signal: string | null }) => ({ ...s, lastLines: [] });
  return { pid: c.pid, exited: c.status.then(map), stop: (g) => c.stop(g).then(map) };
}

/** The real file system. */
export const realFiles: NodeFiles = {
  readFile: (path) => Deno.readFileSync(path),
  async readText(path) {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  },
  async exists(path) {
    try {
      await Deno.stat(path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  },
  async writeText(path, text, mode) {
    await Deno.writeTextFile(path, text, mode === undefined ? {} : { mode });
  },
  async replaceText(path, text) {
    const tmp = `${path}.new`;
    const old = await Deno.stat(path);
    await Deno.writeTextFile(tmp, text, { mode: (old.mode ?? 0o644) & 0o777 });
    if (old.uid !== null && old.gid !== null) await Deno.chown(tmp, old.uid, old.gid);
    await Deno.rename(tmp, path);
  },
  rename: (from, to) => Deno.rename(from, to),
  async mkdir(path, mode) {
    await Deno.mkdir(path, { recursive: true });
    if (mode !== undefined) await Deno.chmod(path, mode);
  },
  async remove(path) {
    try {
      await Deno.remove(path, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },
};

/** Start time of a process (`/proc/<pid>/stat` field 22), or null when it does not exist. */
async function processStart(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) start after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** The parts of a node running on this machine (in the current network namespace). */
export function realParts(opts: NodeOptions, log: Logger): NodeParts {
  const runner = createRunner();
  return {
    platform: createLinuxPlatform(runner, { log: log.child("kernel") }),
    registry: (id: Identity) =>
      new RegistryClient(opts.registry, {
        identity: { prefix: id.prefix, key: id.key, ca: id.ca.publicKey },
      }),
    babel: {
      start: async (config) =>
        asManaged(
          await startBabeld({ runner, config }),
          (e) => ({ code: e.code, signal: e.signal, lastLines: e.lastLog }),
        ),
      client: (socket) =>
        createBabelClient({
          connect: unixConnector(socket),
          where: socket,
          log: log.child("babel"),
        }),
    },
    openvpn: {
      start: (name, args, logFile) =>
        Promise.resolve(asManaged(
          startOpenVpn(runner, { name, args, log: log.child("openvpn"), logFile }),
          (e) => ({ code: e.code, signal: e.signal, lastLines: e.lastLines }),
        )),
      async writeHookScript(scriptPath, socket) {
        await writeHookScript(scriptPath, selfArgv(), socket, selfEnv());
        return scriptPath;
      },
      serveHooks: (socket, handler) =>
        startHookServer({ path: socket, handler, log: log.child("hook") }),
    },
    shell: {
      async run(cmd, env, signal) {
        const r = await runner.run(["sh", "-c", cmd], {
          env,
          ok: "any",
          processGroup: true,
          signal,
        });
        for (const line of (r.stdout + r.stderr).split("\n").filter((l) => l)) {
          log.info(`--up: ${line}`);
        }
        return r.code;
      },
      spawn: (cmd, env) => spawned(runner, ["sh", "-c", cmd], env),
    },
    files: realFiles,
    host: {
      pid: Deno.pid,
      async processName(pid) {
        try {
          return (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
        } catch {
          return null;
        }
      },
      processStart,
      async listProcesses() {
        const out = [];
        for await (const e of Deno.readDir("/proc")) {
          if (!/^\d+$/.test(e.name)) continue;
          const pid = Number(e.name);
          try {
            const [start, name, cmdline] = await Promise.all([
              processStart(pid),
              Deno.readTextFile(`/proc/${pid}/comm`),
              Deno.readTextFile(`/proc/${pid}/cmdline`),
            ]);
            if (start !== null) {
              out.push({ pid, start, name: name.trim(), cmdline: cmdline.replaceAll("\0", " ") });
            }
          } catch {
            // Gone meanwhile.
          }
        }
        return out;
      },
      kill(pid, signal) {
        try {
          Deno.kill(pid, signal);
        } catch {
          // Already gone.
        }
      },
      path: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    },
    openCache: (path) =>
      openCacheFile(path, openPrivateDatabase, Deno.renameSync, {
        onReset: (why) => log.warn(`Cache ${path} reset (old file kept as ${path}.bak): ${why}`),
      }),
    serveControl: (path, handler) => serveControl(path, handler, (m) => log.warn(m)),
    clock: systemClock,
    log,
    tunnels: overlayTunnels(opts, realOverlayParts(opts, runner, log)),
  };
}
