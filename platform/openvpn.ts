/**
 * OpenVPN processes (PROTOCOL.md §8.1), through the runner
 * (platform/runner.ts) so the same code works in the machine's namespace and in test
 * namespaces. Arguments come from core/openvpn/args.ts.
 */
import type { Logger } from "../core/log.ts";
import type { Child, Runner } from "./runner.ts";

/** Program name (looked up in PATH). */
export const OPENVPN = "openvpn";
/** Lines of output kept for the exit report. */
const KEEP_LINES = 20;

/** How an OpenVPN process ended. */
export interface OpenVpnExit {
  code: number;
  signal: string | null;
  /** Its last lines of output (from its log file with `--log-append`). */
  lastLines: string[];
}

/** A running OpenVPN process. */
export interface OpenVpnProcess {
  /** What it is, for logs: e.g. its tap interface. */
  readonly name: string;
  readonly argv: readonly string[];
  readonly pid: number;
  /** Unix time (ms) when it was started. */
  readonly startedAt: number;
  /** Resolves when it has exited. */
  readonly exited: Promise<OpenVpnExit>;
  /** True once it has exited. */
  readonly done: boolean;
  /** Its last lines of output so far. */
  lastLines(): string[];
  /** SIGTERM, then SIGKILL after `graceMs` (default 3000); resolves when it has exited. */
  stop(graceMs?: number): Promise<OpenVpnExit>;
}

/** Options of {@link startOpenVpn}. */
export interface StartOptions {
  /** Name for logs, e.g. the tap interface. */
  name: string;
  /** Arguments without the program name (core/openvpn/args.ts). */
  args: readonly string[];
  log?: Logger;
  /** The `--log-append` file, when OpenVPN writes there instead of its output. */
  logFile?: string;
  /** Unix time in ms (default Date.now). */
  now?: () => number;
}

/** Starts `openvpn <args>`; its output goes to the log at debug level. */
export function startOpenVpn(runner: Runner, o: StartOptions): OpenVpnProcess {
  const log = o.log?.child(o.name);
  const child: Child = runner.spawn([OPENVPN, ...o.args], { stdout: "piped", stderr: "piped" });
  const lines: string[] = [];
  const keep = (line: string) => {
    if (!line) return;
    lines.push(line);
    if (lines.length > KEEP_LINES) lines.shift();
    log?.debug(line);
  };
  const reading = Promise.all([pump(child.stdout, keep), pump(child.stderr, keep)]);
  let done = false;
  const exited = (async (): Promise<OpenVpnExit> => {
    const s = await child.status;
    await reading;
    done = true;
    const fromFile = o.logFile ? await tail(o.logFile, KEEP_LINES) : [];
    return {
      code: s.code,
      signal: s.signal,
      lastLines: [...fromFile, ...lines].slice(-KEEP_LINES),
    };
  })();
  log?.debug(`started (pid ${child.pid}): openvpn ${o.args.join(" ")}`);
  return {
    name: o.name,
    argv: child.argv,
    pid: child.pid,
    startedAt: (o.now ?? Date.now)(),
    exited,
    get done() {
      return done;
    },
    lastLines: () => [...lines],
    async stop(graceMs = 3000) {
      await child.stop(graceMs);
      return await exited;
    },
  };
}

async function pump(
  s: ReadableStream<Uint8Array> | null,
  line: (l: string) => void,
): Promise<void> {
  if (!s) return;
  let rest = "";
  const dec = new TextDecoder();
  try {
    for await (const chunk of s) {
      const parts = (rest + dec.decode(chunk, { stream: true })).split("\n");
      rest = parts.pop() ?? "";
      for (const p of parts) line(p.trimEnd());
    }
  } catch {
    // The stream broke when the process died; what was read is kept.
  }
  line(rest.trimEnd());
}

/** Last `n` lines of a text file (reads at most its last 16 KiB); [] if unreadable. */
export async function tail(path: string, n: number): Promise<string[]> {
  try {
    using f = await Deno.open(path);
    const size = (await f.stat()).size;
    const len = Math.min(size, 16384);
    await f.seek(size - len, Deno.SeekMode.Start);
    const buf = new Uint8Array(len);
    let off = 0;
    while (off < len) {
      const r = await f.read(buf.subarray(off));
      if (r === null) break;
      off += r;
    }
    const lines = new TextDecoder().decode(buf.subarray(0, off)).split("\n");
    if (size > len) lines.shift(); // partial first line
    return lines.map((l) => l.trimEnd()).filter((l) => l).slice(-n);
  } catch {
    return [];
  }
}
