// OpenVPN hook events (PROTOCOL.md §8.1.4) and how they travel to the node.
//
// OpenVPN runs one program for every hook: a small shell script in the run folder that
// executes `re6st ovpn-hook --socket <path>` (see {@link hookScript}). That process sends one
// JSON line ({@link HookRequest}) to the node's hook socket and waits for one JSON line back
// ({@link HookReply}). For client-connect, the reply carries the dynamic configuration the
// hook writes to the file OpenVPN named, or a refusal (the hook then exits with status 1 and
// OpenVPN rejects the client). The node parses and checks the request with
// {@link parseHookRequest}; the hook itself only forwards what OpenVPN gave it.

import { unmapIpv4 } from "../addressing.ts";

/** Version of the hook socket messages; both ends are this program. */
export const HOOK_WIRE_VERSION = 1;

/** Environment variables the hook forwards (OpenVPN 2.6 names, see its manual). */
export const HOOK_ENV_KEYS = [
  "script_type",
  "script_context",
  "dev",
  "tun_mtu",
  "ifconfig_local",
  "ifconfig_netmask",
  "common_name",
  "tls_serial_0",
  "trusted_ip",
  "trusted_ip6",
  "trusted_port",
  "OPENVPN_external_ip",
  "client_connect_config_file",
  "bytes_received",
  "bytes_sent",
  "time_duration",
  "daemon_pid",
] as const;

/** What the hook process sends: OpenVPN's environment subset, arguments and the time. */
export interface HookRequest {
  v: number;
  /** Selected environment variables ({@link HOOK_ENV_KEYS}). */
  env: Record<string, string>;
  /** Arguments OpenVPN appended to the hook command. */
  args: string[];
  /** Unix time (seconds) when the hook ran. */
  time: number;
}

/** What the node answers. */
export interface HookReply {
  v: number;
  ok: boolean;
  /** client-connect, accepted: text for the dynamic configuration file. */
  config?: string;
  /** Refused or failed: why (for OpenVPN's log). */
  error?: string;
}

/** The tap came up (`--up`, every OpenVPN process). */
export interface UpEvent {
  type: "up";
  dev: string;
  /** Tap MTU chosen by OpenVPN. */
  mtu: number;
  /** `--ifconfig` address and netmask when the IPv4 payload is on. */
  ifconfigLocal?: string;
  ifconfigNetmask?: string;
  time: number;
  openvpnPid?: number;
}

/** A client tunnel is established (`--route-up` of a client process). */
export interface RouteUpEvent {
  type: "route-up";
  dev: string;
  /** Server's certificate common name, e.g. `6/16`. */
  commonName: string;
  /** Server's certificate serial number. */
  serial: bigint;
  /** Address the server sees us from (`push "setenv-safe external_ip …"`), if pushed. */
  externalIp?: string;
  time: number;
  openvpnPid?: number;
}

/** A client connected to one of our servers (`--client-connect`); the node must answer. */
export interface ClientConnectEvent {
  type: "client-connect";
  /** Tap interface of the server (shared by all its clients). */
  dev: string;
  commonName: string;
  serial: bigint;
  /** Client's real address (IPv4-mapped IPv6 addresses are given as IPv4). */
  trustedIp: string;
  trustedPort: number;
  time: number;
  openvpnPid?: number;
}

/** A client left one of our servers (`--client-disconnect`). */
export interface ClientDisconnectEvent {
  type: "client-disconnect";
  dev: string;
  commonName: string;
  serial: bigint;
  trustedIp: string;
  trustedPort: number;
  bytesReceived?: number;
  bytesSent?: number;
  /** Seconds the client was connected. */
  duration?: number;
  time: number;
  openvpnPid?: number;
}

/** Any event an OpenVPN hook reports. */
export type HookEvent = UpEvent | RouteUpEvent | ClientConnectEvent | ClientDisconnectEvent;

/**
 * The node's answer to a client-connect event: accept (pushing `externalIp`, by default the
 * client's own address) or refuse with a reason.
 */
export type ConnectAnswer =
  | { accept: true; externalIp?: string }
  | { accept: false; reason: string };

/** A hook message that cannot be understood. */
export class HookError extends Error {
  override name = "HookError";
}

/** The environment subset a hook forwards from its own environment. */
export function pickHookEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of HOOK_ENV_KEYS) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The JSON line a hook sends (with its newline). */
export function encodeHookRequest(
  env: Record<string, string | undefined>,
  args: readonly string[],
  time: number,
): string {
  const req: HookRequest = {
    v: HOOK_WIRE_VERSION,
    env: pickHookEnv(env),
    args: [...args],
    time: Math.floor(time),
  };
  return JSON.stringify(req) + "\n";
}

/** The JSON line the node answers (with its newline). */
export function encodeHookReply(reply: Omit<HookReply, "v">): string {
  return JSON.stringify({ v: HOOK_WIRE_VERSION, ...reply }) + "\n";
}

function isStringRecord(x: unknown): x is Record<string, string> {
  return typeof x === "object" && x !== null && !Array.isArray(x) &&
    Object.values(x).every((v) => typeof v === "string");
}

/** Parses the node's answer line; throws {@link HookError} when malformed. */
export function decodeHookReply(line: string): HookReply {
  let x: unknown;
  try {
    x = JSON.parse(line);
  } catch (e) {
    throw new HookError(`Invalid hook reply: not JSON`, { cause: e });
  }
  const r = x as Partial<HookReply>;
  if (
    typeof x !== "object" || x === null || r.v !== HOOK_WIRE_VERSION ||
    typeof r.ok !== "boolean" ||
    (r.config !== undefined && typeof r.config !== "string") ||
    (r.error !== undefined && typeof r.error !== "string")
  ) {
    throw new HookError(`Invalid hook reply ${JSON.stringify(line.slice(0, 200))}`);
  }
  return r as HookReply;
}

/** Parses a hook's JSON line into its request; throws {@link HookError} when malformed. */
export function decodeHookRequest(line: string): HookRequest {
  let x: unknown;
  try {
    x = JSON.parse(line);
  } catch (e) {
    throw new HookError(`Invalid hook request: not JSON`, { cause: e });
  }
  const r = x as Partial<HookRequest>;
  if (typeof x !== "object" || x === null || r.v !== HOOK_WIRE_VERSION) {
    throw new HookError(`Invalid hook request: unknown version ${JSON.stringify(r?.v)}`);
  }
  if (
    !isStringRecord(r.env) || !Array.isArray(r.args) ||
    !r.args.every((a) => typeof a === "string") || typeof r.time !== "number" ||
    !Number.isFinite(r.time)
  ) {
    throw new HookError("Invalid hook request: env, args or time missing or mistyped");
  }
  return r as HookRequest;
}

const CN_RE = /^\d+\/\d+$/;
const IFACE_RE = /^[A-Za-z0-9_.:-]{1,15}$/;

function need(env: Record<string, string>, key: string, what: string): string {
  const v = env[key];
  if (v === undefined || v === "") {
    throw new HookError(`OpenVPN ${what} hook: environment variable ${key} is missing`);
  }
  return v;
}

function int(text: string, key: string, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text) || Number(text) > max) {
    throw new HookError(`OpenVPN ${what} hook: ${key}=${JSON.stringify(text)} is not a number`);
  }
  return Number(text);
}

function optInt(env: Record<string, string>, key: string, what: string): number | undefined {
  return env[key] === undefined || env[key] === "" ? undefined : int(env[key], key, what);
}

function peer(env: Record<string, string>, what: string) {
  const commonName = need(env, "common_name", what);
  if (!CN_RE.test(commonName)) {
    throw new HookError(`OpenVPN ${what} hook: common_name ${JSON.stringify(commonName)}`);
  }
  const serialText = need(env, "tls_serial_0", what);
  if (!/^\d+$/.test(serialText)) {
    throw new HookError(`OpenVPN ${what} hook: tls_serial_0=${JSON.stringify(serialText)}`);
  }
  return { commonName, serial: BigInt(serialText) };
}

function trusted(env: Record<string, string>, what: string) {
  const ip = env.trusted_ip || env.trusted_ip6;
  if (!ip) throw new HookError(`OpenVPN ${what} hook: trusted_ip and trusted_ip6 are missing`);
  const trustedPort = int(need(env, "trusted_port", what), "trusted_port", what, 65535);
  return { trustedIp: unmapIpv4(ip), trustedPort };
}

/** Turns a hook request into a typed event; throws {@link HookError} when incomplete. */
export function parseHookRequest(req: HookRequest): HookEvent {
  const env = req.env;
  const type = need(env, "script_type", "OpenVPN");
  const dev = need(env, "dev", type);
  if (!IFACE_RE.test(dev)) throw new HookError(`OpenVPN ${type} hook: dev ${JSON.stringify(dev)}`);
  const base = { dev, time: req.time, openvpnPid: optInt(env, "daemon_pid", type) };
  switch (type) {
    case "up": {
      const mtu = int(need(env, "tun_mtu", type), "tun_mtu", type, 65535);
      const ev: UpEvent = { type, ...base, mtu };
      if (env.ifconfig_local) ev.ifconfigLocal = env.ifconfig_local;
      if (env.ifconfig_netmask) ev.ifconfigNetmask = env.ifconfig_netmask;
      return ev;
    }
    case "route-up": {
      const ev: RouteUpEvent = { type, ...base, ...peer(env, type) };
      if (env.OPENVPN_external_ip) ev.externalIp = env.OPENVPN_external_ip;
      return ev;
    }
    case "client-connect":
      return { type, ...base, ...peer(env, type), ...trusted(env, type) };
    case "client-disconnect":
      return {
        type,
        ...base,
        ...peer(env, type),
        ...trusted(env, type),
        bytesReceived: optInt(env, "bytes_received", type),
        bytesSent: optInt(env, "bytes_sent", type),
        duration: optInt(env, "time_duration", type),
      };
  }
  throw new HookError(`OpenVPN hook: unexpected script_type ${JSON.stringify(type)}`);
}

const SAFE_IP_RE = /^[0-9A-Fa-f.:]+$/;

/**
 * The client-connect dynamic configuration (§8.1.4): tells the client the address it is
 * seen from, `push "setenv-safe external_ip <ip>"` (clients read `OPENVPN_external_ip`).
 */
export function clientConnectConfig(externalIp: string): string {
  if (!SAFE_IP_RE.test(externalIp)) {
    throw new HookError(`Refusing to push external_ip ${JSON.stringify(externalIp)}`);
  }
  return `push "setenv-safe external_ip ${externalIp}"\n`;
}

/** The reply for a client-connect event given the node's answer. */
export function connectReply(ev: ClientConnectEvent, a: ConnectAnswer): Omit<HookReply, "v"> {
  if (!a.accept) return { ok: false, error: a.reason };
  return { ok: true, config: clientConnectConfig(a.externalIp ?? ev.trustedIp) };
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\/.,:=+@%-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Text of the hook program OpenVPN runs: a shell script running
 * `<self> ovpn-hook --socket <socket> <OpenVPN's arguments>` with `env` set.
 */
export function hookScript(
  self: readonly string[],
  socket: string,
  env: Record<string, string> = {},
): string {
  const lines = [
    "#!/bin/sh",
    "# Written by re6st: OpenVPN runs this for --up, --route-up, --client-connect and",
    "# --client-disconnect; it reports to the node over its hook socket.",
  ];
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`Invalid variable name "${k}"`);
    lines.push(`${k}=${shellQuote(v)}; export ${k}`);
  }
  const argv = [...self, "ovpn-hook", "--socket", socket].map(shellQuote).join(" ");
  lines.push(`exec ${argv} "$@"`, "");
  return lines.join("\n");
}
