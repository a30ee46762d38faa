import { describeError } from "../core/errors.ts";
/**
 * The one command runner (STYLE.md 7): every `ip`, `nft`, `openvpn`, `babeld` launch goes
 * through a {@link Runner}. Commands are argv arrays (never shell strings), run with
 * `LC_ALL=C` so error texts can be matched, and each call declares the exit codes it accepts.
 * A runner can be bound to a network namespace, so code using it never needs to know.
 */

/** Options for a short command whose output is collected. */
export interface RunOptions {
  /** Exit codes that count as success (default `[0]`); `"any"` never fails on the code. */
  ok?: readonly number[] | "any";
  /** Text written to the command's standard input. */
  stdin?: string;
  /** Extra environment variables (the runner always adds `LC_ALL=C`). */
  env?: Record<string, string>;
  /** Kill the command and fail after this many milliseconds. */
  timeoutMs?: number;
  /** Kill the command (SIGTERM) and fail when this aborts. */
  signal?: AbortSignal;
  /**
   * Run it in a process group of its own (setsid); the timeout and `signal` then reach
   * everything it started (`sh -c` commands).
   */
  processGroup?: boolean;
}

/** What a finished command returned. */
export interface RunResult {
  /** The argv actually executed (including any `ip netns exec <ns>` wrapper). */
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
}

/** Where a spawned child's standard output or error goes. */
export type SpawnOutput = "null" | "inherit" | "piped" | { append: string };

/** Options for a long-running child process. */
export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Default `"null"`. `{ append: path }` appends to a log file (shared with stderr allowed). */
  stdout?: SpawnOutput;
  /** Default `"null"`. */
  stderr?: SpawnOutput;
  /**
   * Run it in a process group of its own (setsid): kill() and stop() then signal the whole
   * group, so that what it started (`sh -c` commands) stops with it.
   */
  processGroup?: boolean;
}

/** How a child ended. */
export interface ChildStatus {
  code: number;
  signal: string | null;
  success: boolean;
}

/** A long-running child process started by {@link Runner.spawn}. */
export interface Child {
  readonly argv: readonly string[];
  readonly pid: number;
  /** Resolves when the child has exited and its log file (if any) is flushed and closed. */
  readonly status: Promise<ChildStatus>;
  /** Set when the matching option was `"piped"`; the caller must consume or cancel it. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  readonly stderr: ReadableStream<Uint8Array> | null;
  /** Sends a signal (default SIGTERM); does nothing if the child already exited. */
  kill(signal?: Deno.Signal): void;
  /** Sends SIGTERM, then SIGKILL after `graceMs` (default 3000), and waits for the exit. */
  stop(graceMs?: number): Promise<ChildStatus>;
}

/** Runs programs. Production uses {@link createRunner}; tests use {@link recordingRunner}. */
export interface Runner {
  /** The network namespace commands run in, or undefined for the current one. */
  readonly netns?: string;
  /** Runs a command to completion; throws {@link CommandError} on an unexpected exit code. */
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a long-running child. */
  spawn(argv: readonly string[], opts?: SpawnOptions): Child;
}

/** A command failed to start or exited with a code the caller did not expect. */
export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    readonly argv: readonly string[],
    /** Exit code, or -1 when the program could not be started or timed out. */
    readonly code: number,
    readonly stderr: string,
    readonly stdout = "",
    options?: ErrorOptions,
  ) {
    const why = stderr.trim().split("\n").filter((l) => l).slice(-3).join(" / ");
    super(
      `Command "${argv.join(" ")}" ${code < 0 ? "could not run" : `failed with exit code ${code}`}${
        why ? `: ${why}` : ""
      }`,
      options,
    );
  }
}

/** Returns argv prefixed with `ip netns exec <netns>` when a namespace is given. */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns ? ["ip", "netns", "exec", netns, ...argv] : [...argv];
}

const decoder = new TextDecoder();

function exitOk(ok: readonly number[] | "any", code: number): boolean {
  return ok === "any" || ok.includes(code);
}

/** Creates the real runner, optionally bound to a network namespace (`ip netns exec`). */
export function createRunner(opts: { netns?: string } = {}): Runner {
  const netns = opts.netns;
  return {
    netns,
    async run(argv, o = {}) {
      const full = inNetns(netns, argv);
      const ok = o.ok ?? [0];
      const timeout = o.timeoutMs === undefined ? undefined : AbortSignal.timeout(o.timeoutMs);
      const signals = [timeout, o.signal].filter((x): x is AbortSignal => x !== undefined);
      const abort = signals.length ? AbortSignal.any(signals) : undefined;
      const group = o.processGroup ?? false;
      const why = () =>
        timeout?.aborted ? `timed out after ${o.timeoutMs} ms` : "stopped before it finished";
      if (abort?.aborted) throw new CommandError(full, -1, why());
      let out: Deno.CommandOutput;
      let onAbort: (() => void) | undefined;
      try {
        const cmd = new Deno.Command(full[0], {
          args: full.slice(1),
          env: { ...o.env, LC_ALL: "C" },
          stdin: o.stdin === undefined ? "null" : "piped",
          stdout: "piped",
          stderr: "piped",
          // A group is killed by hand below: Deno's signal would reach the leader only.
          signal: group ? undefined : abort,
          detached: group,
        });
        const child = cmd.spawn();
        if (group && abort) {
          onAbort = () => killGroup(child.pid, "SIGTERM");
          abort.addEventListener("abort", onAbort, { once: true });
        }
        if (o.stdin !== undefined) {
          const w = child.stdin.getWriter();
          try {
            await w.write(new TextEncoder().encode(o.stdin));
            await w.close();
          } catch {
            // The command exited without reading its input; its status says why.
          }
        }
        out = await child.output();
      } catch (e) {
        throw new CommandError(full, -1, String(e), "", { cause: e });
      } finally {
        if (onAbort) abort?.removeEventListener("abort", onAbort);
      }
      const res: RunResult = {
        argv: full,
        code: out.code,
        stdout: decoder.decode(out.stdout),
        stderr: decoder.decode(out.stderr),
      };
      if (abort?.aborted) {
        throw new CommandError(full, -1, `${why()}\n${res.stderr}`);
      }
      if (!exitOk(ok, out.code)) {
        throw new CommandError(full, out.code, res.stderr, res.stdout);
      }
      return res;
    },
    spawn(argv, o = {}) {
      return spawnChild(inNetns(netns, argv), o);
    },
  };
}

function stdio(o: SpawnOutput | undefined): "null" | "inherit" | "piped" {
  if (o === undefined) return "null";
  return typeof o === "object" ? "piped" : o;
}

/** Sends `sig` to every process of the group led by `pid`; nothing if it is gone. */
function killGroup(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(-pid, sig);
  } catch {
    // No process left in the group.
  }
}

function spawnChild(argv: string[], o: SpawnOptions): Child {
  // Log files first: each path opened once (shared when stdout and stderr go to the same
  // file), before the child exists, so that a file that cannot be opened starts nothing.
  const files = new Map<string, Deno.FsFile>();
  const closeFiles = () => {
    for (const f of files.values()) f.close();
  };
  try {
    for (const out of [o.stdout, o.stderr]) {
      if (typeof out === "object" && !files.has(out.append)) {
        files.set(out.append, Deno.openSync(out.append, { append: true, create: true }));
      }
    }
  } catch (e) {
    closeFiles();
    throw new CommandError(argv, -1, `cannot open its log file: ${describeError(e)}`, "", {
      cause: e,
    });
  }
  const group = o.processGroup ?? false;
  let proc: Deno.ChildProcess;
  try {
    proc = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: { ...o.env, LC_ALL: "C" },
      cwd: o.cwd,
      stdin: "null",
      stdout: stdio(o.stdout),
      stderr: stdio(o.stderr),
      detached: group,
    }).spawn();
  } catch (e) {
    closeFiles();
    throw new CommandError(argv, -1, String(e), "", { cause: e });
  }
  const copies: Promise<void>[] = [];
  const toFile = (o: SpawnOutput | undefined, s: ReadableStream<Uint8Array> | null) => {
    if (typeof o !== "object" || !s) return s;
    copies.push(copyTo(s, files.get(o.append)!));
    return null;
  };
  const stdout = toFile(o.stdout, stdio(o.stdout) === "piped" ? proc.stdout : null);
  const stderr = toFile(o.stderr, stdio(o.stderr) === "piped" ? proc.stderr : null);
  let exited = false;
  const status = (async () => {
    const s = await proc.status;
    exited = true;
    await Promise.allSettled(copies);
    closeFiles();
    return { code: s.code, signal: s.signal, success: s.success };
  })();
  const kill = (sig: Deno.Signal = "SIGTERM") => {
    if (exited) return;
    if (group) return killGroup(proc.pid, sig);
    try {
      proc.kill(sig);
    } catch {
      // Already gone between the check and the signal.
    }
  };
  return {
    argv,
    pid: proc.pid,
    status,
    stdout: stdout ?? null,
    stderr: stderr ?? null,
    kill,
    async stop(graceMs = 3000) {
      kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((r) => timer = setTimeout(r, graceMs));
      const first = await Promise.race([status, late]);
      clearTimeout(timer);
      if (first === undefined) kill("SIGKILL");
      return await status;
    },
  };
}

async function copyTo(s: ReadableStream<Uint8Array>, f: Deno.FsFile): Promise<void> {
  for await (const chunk of s) {
    let off = 0;
    while (off < chunk.length) off += await f.write(chunk.subarray(off));
  }
}

/** One call seen by a {@link recordingRunner}. */
export interface RecordedCall {
  kind: "run" | "spawn";
  argv: string[];
  opts: RunOptions | SpawnOptions;
}

/** A reply a recording runner gives to a command (missing fields: code 0, empty output). */
export type RecordedReply = Partial<Pick<RunResult, "code" | "stdout" | "stderr">>;

/** A fake runner that records every call and answers with `reply` (default: success). */
export function recordingRunner(
  reply: (argv: readonly string[]) => RecordedReply | undefined = () => undefined,
  netns?: string,
): Runner & { calls: RecordedCall[]; lines(): string[] } {
  const calls: RecordedCall[] = [];
  return {
    netns,
    calls,
    lines: () => calls.map((c) => c.argv.join(" ")),
    run(argv, opts = {}) {
      const full = inNetns(netns, argv);
      calls.push({ kind: "run", argv: full, opts });
      const r = reply(argv) ?? {};
      const res = { argv: full, code: r.code ?? 0, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
      if (!exitOk(opts.ok ?? [0], res.code)) {
        return Promise.reject(new CommandError(full, res.code, res.stderr, res.stdout));
      }
      return Promise.resolve(res);
    },
    spawn(argv, opts = {}) {
      const full = inNetns(netns, argv);
      calls.push({ kind: "spawn", argv: full, opts });
      let done!: (s: ChildStatus) => void;
      const status = new Promise<ChildStatus>((r) => done = r);
      const end = (sig: string) => done({ code: 1, signal: sig, success: false });
      return {
        argv: full,
        pid: 0,
        status,
        stdout: null,
        stderr: null,
        kill: (sig = "SIGTERM") => end(sig),
        stop: () => (end("SIGTERM"), status),
      };
    },
  };
}
