// babeld command line and configuration file for stock babeld 1.12.1
// (PROTOCOL.md §8.3 as adapted in §8.4.4; keys §4.9, VECTORS.md §14-§15).
//
// Differences from the reference command line, all deliberate:
// * statements go to a configuration file (mode 0600, it holds the HMAC keys) passed with
//   `-c`, instead of `-C` arguments visible to every user in `ps`; the order of the
//   statements is the reference order. Passing `-c` also stops babeld from reading
//   /etc/babeld.conf. babeld parses `-C` arguments before `-c` files, so `-C` statements in
//   the user's extra `-B` arguments come before ours (their filters take precedence);
// * `local-path-readwrite <socket>` (the stock text interface) replaces the patched `-X`;
// * a normal node drops plain (non source-specific) default routes learned from
//   pre-protocol-8 gateways (`in … deny`), because stock babeld ignores `src-prefix` in
//   install filters and would install them as the machine's default route (§8.4.4);
// * kernel IPv6 subtrees are required, so the `ipv6-subtrees false` variants are not built;
// * stock babeld signs and checks with one key per interface: the accept key is defined but
//   unused, and a rotation replaces the sign key in place (docs/babel-key-rotation.md).

import { type Bits, networkCidr, nodeIp } from "../addressing.ts";
import { BABEL_KEY_BYTES, TUNNEL_HELLO_DIVISOR, TUNNEL_HELLO_MIN_S } from "../constants.ts";

/** Files babeld uses. */
export interface BabelPaths {
  /** Generated configuration file (`-c`), in the 0700 run directory. */
  config: string;
  /** Local interface socket (`local-path-readwrite`), in the 0700 run directory. */
  socket: string;
  /** Long-term state (`-S`), e.g. `<state>/babeld.state`. */
  state: string;
  /** Log file (`-L`), e.g. `<log>/babeld.log`. */
  log: string;
  /** Pid file (`-I`); absent or "" = none, as in the reference. */
  pid?: string;
}

/** IPv4 payload of the node (§1.6). */
export interface BabelIpv4 {
  /** Node IPv4 address, e.g. "10.42.6.1". */
  address: string;
  /** Length of the node's IPv4 block, e.g. 24. */
  length: number;
}

/** Everything that shapes babeld's configuration. */
export interface BabelConfigInput {
  /** Network bit-string (§1.1). */
  network: Bits;
  /** Node prefix bit-string, relative to the network (§1.2). */
  prefix: Bits;
  /** Babel hello interval in seconds (network parameter `hello`). */
  helloS: number;
  /** Interface parameters of the `default` statement (network parameter `babel_default`). */
  babelDefault: string;
  /** Key to sign and verify with (16 bytes); absent = no Babel authentication (§4.9). */
  hmacSign?: Uint8Array;
  /** Additional key (16 bytes); empty = also accept unsigned or badly signed packets. */
  hmacAccept?: Uint8Array;
  /** `--gateway`: announce the kernel default route as `::/0 from <network>`. */
  gateway: boolean;
  /** IPv4 payload, when enabled. */
  ipv4?: BabelIpv4;
  /** OpenVPN taps declared `type tunnel` at start-up: servers, then client taps. */
  tunnelInterfaces: readonly string[];
  /** Extra Babel interfaces (`-i`), using the default parameters. */
  interfaces: readonly string[];
  /** Extra babeld arguments (`-B`), passed verbatim. */
  extraArgs: readonly string[];
  paths: BabelPaths;
}

/** babeld's arguments (without the program name) and the configuration file to write. */
export interface BabelConfig {
  args: string[];
  /** Text of `paths.config`; holds secrets, write it with mode 0600. */
  configText: string;
  paths: BabelPaths;
  /**
   * Parameters for a tap added at run time (`interface <tap> <tunnelParams>`): run-time
   * statements are not merged with `default`, so they repeat it (§8.4.4).
   */
  tunnelParams: string;
}

/** A configuration value babeld cannot take. */
export class BabelConfigError extends Error {
  override name = "BabelConfigError";
}

/** Longest line babeld's local interface accepts, newline included (LOCAL_BUFSIZE). */
export const BABEL_LOCAL_LINE_MAX = 1024;

const IFNAME_RE = /^[A-Za-z0-9_.:@+-]{1,15}$/;
const PATH_RE = /^\/[^\s"#\\]*$/;
const SUN_PATH_MAX = 107;

/** Checks an interface name can appear in babeld statements and on its command line. */
export function checkInterfaceName(name: string): string {
  if (!IFNAME_RE.test(name)) {
    throw new BabelConfigError(`Invalid Babel interface name ${JSON.stringify(name)}`);
  }
  return name;
}

function checkPath(what: string, path: string, max = 4095): string {
  if (!PATH_RE.test(path) || path.length > max) {
    throw new BabelConfigError(
      `Invalid babeld ${what} path ${JSON.stringify(path)}: absolute, without spaces, quotes, ` +
        `"#" or "\\", at most ${max} characters`,
    );
  }
  return path;
}

function checkParams(what: string, text: string): string {
  // Any character that could end a statement or start a comment would let the network
  // configuration inject statements into babeld.
  if (!/^[ -~]*$/.test(text) || /[#"\\]/.test(text)) {
    throw new BabelConfigError(`Invalid ${what} ${JSON.stringify(text)}: forbidden character`);
  }
  return text.trim().replace(/ +/g, " ");
}

/** The statement defining (or, sent at run time, replacing in place) the sign key. */
export function signKeyStatement(key: Uint8Array): string {
  checkKey("babel_hmac_sign", key, false);
  return `key type blake2s128 id sign value ${hex(key)}`;
}

function hex(key: Uint8Array): string {
  return Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("");
}

function checkKey(what: string, key: Uint8Array, allowEmpty: boolean): void {
  if (key.length === BABEL_KEY_BYTES || (allowEmpty && key.length === 0)) return;
  throw new BabelConfigError(
    `Invalid ${what}: ${key.length} bytes, expected ${BABEL_KEY_BYTES}` +
      (allowEmpty ? " or empty" : ""),
  );
}

/** Interface parameters shared by `default` and run-time taps: babel_default and keys. */
function authParams(input: Pick<BabelConfigInput, "hmacSign" | "hmacAccept">): string[] {
  const { hmacSign, hmacAccept } = input;
  if (!hmacSign) {
    if (hmacAccept) {
      throw new BabelConfigError("Babel accept key given without a sign key");
    }
    return [];
  }
  checkKey("babel_hmac_sign", hmacSign, false);
  if (hmacAccept) checkKey("babel_hmac_accept", hmacAccept, true);
  return hmacAccept?.length === 0 ? ["key sign", "accept-bad-signatures true"] : ["key sign"];
}

/**
 * Hello interval of a tunnel interface for the network hello `helloS`: faster than the
 * network's, so that a dead tunnel is noticed sooner; babeld sends full updates every four of
 * them, so that a restarted babeld or a new tunnel is routed through again within seconds.
 */
export function tunnelTiming(helloS: number): string {
  const hello = Math.max(TUNNEL_HELLO_MIN_S, helloS / TUNNEL_HELLO_DIVISOR);
  return `hello-interval ${Math.round(Math.min(hello, helloS) * 100) / 100}`;
}

/** Options of a tunnel interface added at run time. */
export interface TunnelParamsInput {
  /** Network hello, seconds (tunnel interfaces get faster hellos, {@link tunnelTiming}). */
  helloS?: number;
  babelDefault: string;
  hmacSign?: Uint8Array;
  hmacAccept?: Uint8Array;
  /** Receive cost announced to the neighbour (makes routes through us expensive, §8.4.5). */
  rxcost?: number;
}

/** Parameters of an `interface <tap> …` statement sent at run time (§8.4.4). */
export function tunnelParams(input: TunnelParamsInput): string {
  const parts = ["type tunnel", checkParams("babel_default", input.babelDefault)];
  if (input.helloS !== undefined) parts.push(tunnelTiming(input.helloS));
  parts.push(...authParams(input));
  if (input.rxcost !== undefined) {
    if (!Number.isInteger(input.rxcost) || input.rxcost < 1 || input.rxcost > 0xffff) {
      throw new BabelConfigError(`Invalid Babel rxcost ${input.rxcost}: 1..65535`);
    }
    parts.push(`rxcost ${input.rxcost}`);
  }
  return parts.filter((p) => p).join(" ");
}

/** Builds babeld's arguments and configuration file for a node (§8.3, §8.4.4). */
export function buildBabelConfig(input: BabelConfigInput): BabelConfig {
  const { network, prefix, paths } = input;
  const subnetLength = network.length + prefix.length;
  if (subnetLength > 128 || subnetLength <= network.length) {
    throw new BabelConfigError(
      `Invalid node prefix of ${prefix.length} bits in a ${network.length}-bit network`,
    );
  }
  if (!(input.helloS > 0 && input.helloS <= 655350)) {
    throw new BabelConfigError(`Invalid Babel hello interval ${input.helloS} s`);
  }
  checkPath("configuration", paths.config);
  checkPath("socket", paths.socket, SUN_PATH_MAX);
  checkPath("state", paths.state);
  checkPath("log", paths.log);
  if (paths.pid) checkPath("pid", paths.pid);
  const tunnels = input.tunnelInterfaces.map(checkInterfaceName);
  const others = input.interfaces.map(checkInterfaceName);
  if (tunnels.length + others.length === 0) {
    throw new BabelConfigError("babeld needs at least one interface at start-up");
  }
  const ip = nodeIp(network, prefix);
  const net = networkCidr(network);
  const babelDefault = checkParams("babel_default", input.babelDefault);
  const auth = authParams(input);

  const lines = [
    "# Generated by re6st for babeld 1.12.1 (stock); rewritten at every start.",
    `local-path-readwrite ${paths.socket}`,
    "redistribute local deny",
    `redistribute ip ${ip}/${subnetLength} eq ${subnetLength}`,
  ];
  if (input.hmacSign) {
    lines.push(signKeyStatement(input.hmacSign));
    if (input.hmacAccept?.length) {
      lines.push(`key type blake2s128 id accept value ${hex(input.hmacAccept)}`);
    }
  }
  lines.push(["default", babelDefault, ...auth].filter((p) => p).join(" "));
  const v4 = input.ipv4;
  if (v4) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(v4.address) || !(v4.length >= 0 && v4.length <= 32)) {
      throw new BabelConfigError(`Invalid IPv4 payload ${v4.address}/${v4.length}`);
    }
    lines.push(`redistribute ip ${v4.address}/${v4.length} eq ${v4.length}`);
  }
  if (input.gateway) {
    lines.push(`redistribute ip ::/0 eq 0 src-prefix ${net}`);
  } else {
    lines.push("in ip ::/0 eq 0 src-ip ::/0 src-eq 0 deny");
  }
  lines.push("redistribute deny", `install pref-src ${ip}`);
  if (v4) lines.push(`install pref-src ${v4.address}`);
  const timing = tunnelTiming(input.helloS);
  for (const tap of tunnels) lines.push(`interface ${tap} type tunnel ${timing}`);

  const hello = String(input.helloS);
  const args = [
    "-h",
    hello,
    "-H",
    hello,
    "-L",
    paths.log,
    "-S",
    paths.state,
    "-I",
    paths.pid ?? "",
    "-s",
    "-c",
    paths.config,
    ...input.extraArgs,
    ...others,
    ...tunnels,
  ];
  const tp = tunnelParams({ ...input, babelDefault });
  return { args, configText: lines.join("\n") + "\n", paths: { ...paths }, tunnelParams: tp };
}
