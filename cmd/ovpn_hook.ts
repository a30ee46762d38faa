// `re6st ovpn-hook`: the hidden subcommand OpenVPN runs for its hooks (PROTOCOL.md §8.1.4).
//
// OpenVPN starts it (through the script written by platform/hook_server.ts) with its hook
// environment and arguments. `up` brings the tap up with OpenVPN's MTU; every event is then
// sent to the node over `--socket`; for client-connect the node's answer decides: the
// dynamic configuration is written to the file OpenVPN named, or the hook exits with 1 and
// OpenVPN refuses the client.
import { describeError } from "../core/errors.ts";
import { encodeHookRequest, type HookReply } from "../core/openvpn/hooks.ts";
import { createRunner, type Runner } from "../platform/runner.ts";
import { sendHookRequest } from "../platform/hook_server.ts";
import { type Io, UsageError } from "./io.ts";

/** One line for `re6st --help` (the command is hidden). */
export const summary = "internal: OpenVPN hook (run by OpenVPN, not by people)";
/** Hidden from `re6st --help`. */
export const hidden = true;
/** The complete help of `re6st ovpn-hook`. */
export const help = [
  "Usage: re6st ovpn-hook --socket PATH [ARGS FROM OPENVPN...]",
  "",
  "Run by OpenVPN for --up, --route-up, --client-connect and --client-disconnect: reports",
  "the event (from OpenVPN's environment) to the node listening on PATH.",
].join("\n");

/** Time the hook waits for the node's answer, ms (OpenVPN waits for the hook). */
export const HOOK_TIMEOUT_MS = 10_000;

/** What the hook uses from the outside world; tests pass fakes. */
export interface HookDeps {
  env: Record<string, string | undefined>;
  /** Unix time in milliseconds. */
  now(): number;
  send(socket: string, line: string, timeoutMs: number): Promise<HookReply>;
  runner: Runner;
  writeTextFile(path: string, text: string): Promise<void>;
}

/** The real process: its environment, clock, the socket, `ip`, files. */
export function processDeps(): HookDeps {
  return {
    env: Deno.env.toObject(),
    now: () => Date.now(),
    send: sendHookRequest,
    runner: createRunner(),
    writeTextFile: (p, t) => Deno.writeTextFile(p, t),
  };
}

function parseArgs(args: string[]): { socket?: string; rest: string[]; help: boolean } {
  let socket: string | undefined;
  let i = 0;
  if (args[0] === "-h" || args[0] === "--help") return { rest: [], help: true };
  if (args[0] === "--socket") {
    if (args[1] === undefined) throw new UsageError("option --socket: a path is required");
    socket = args[1];
    i = 2;
  } else if (args[0]?.startsWith("--socket=")) {
    socket = args[0].slice("--socket=".length);
    i = 1;
  }
  return { socket, rest: args.slice(i), help: false };
}

/** Runs `re6st ovpn-hook`; returns the exit code OpenVPN sees (non-zero refuses a client). */
export async function run(args: string[], io: Io, deps: HookDeps = processDeps()): Promise<number> {
  const a = parseArgs(args);
  if (a.help) {
    io.out(help);
    return 0;
  }
  const env = deps.env;
  const type = env.script_type;
  if (!type) throw new UsageError("script_type is not set: this is meant to be run by OpenVPN");
  const dev = env.dev ?? "?";

  if (type === "up") {
    // OpenVPN brings a tap up by itself only with --ifconfig (§8.1.1).
    const mtu = env.tun_mtu;
    if (!env.dev || !mtu || !/^\d+$/.test(mtu)) {
      io.err(`re6st ovpn-hook: up: dev or tun_mtu missing (dev=${env.dev}, tun_mtu=${mtu})`);
      return 1;
    }
    try {
      await deps.runner.run(["ip", "link", "set", "dev", env.dev, "up", "mtu", mtu]);
    } catch (e) {
      io.err(`re6st ovpn-hook: cannot bring ${env.dev} up: ${describeError(e)}`);
      return 1;
    }
  }

  if (a.socket === undefined) {
    if (type === "client-connect") {
      io.err(`re6st ovpn-hook: client-connect on ${dev} without --socket: refusing the client`);
      return 1;
    }
    return 0;
  }

  let reply: HookReply;
  try {
    const line = encodeHookRequest(env, a.rest, deps.now() / 1000);
    reply = await deps.send(a.socket, line, HOOK_TIMEOUT_MS);
  } catch (e) {
    const next = type === "client-connect" ? "refusing the client" : "continuing";
    io.err(
      `re6st ovpn-hook: ${type} on ${dev}: node unreachable at ${a.socket}: ` +
        `${describeError(e)}; ${next}`,
    );
    return type === "client-connect" || type === "route-up" ? 1 : 0;
  }
  if (!reply.ok) {
    io.err(`re6st ovpn-hook: ${type} on ${dev}: refused by the node: ${reply.error ?? "?"}`);
    return 1;
  }
  if (type === "client-connect") {
    const file = env.client_connect_config_file ?? a.rest.at(-1);
    if (!file) {
      io.err(`re6st ovpn-hook: client-connect on ${dev}: OpenVPN gave no configuration file`);
      return 1;
    }
    try {
      await deps.writeTextFile(file, reply.config ?? "");
    } catch (e) {
      io.err(
        `re6st ovpn-hook: client-connect on ${dev}: cannot write ${file}: ${describeError(e)}`,
      );
      return 1;
    }
  }
  return 0;
}
