// OpenVPN command lines (PROTOCOL.md §8.1, VECTORS.md §16), for OpenVPN 2.6.
//
// The reference's arguments are kept, in the reference's order, except where OpenVPN 2.6
// removed an option or changed what it does. Those differences, found with OpenVPN 2.6.14
// (tests/netns/openvpn_test.ts checks them on the real program):
//
// 1. `--ncp-disable` is rejected ("Unrecognized option", removed in 2.6; PROTOCOL.md Q7).
//    An unencrypted data channel is asked for with `--data-ciphers none` (negotiation
//    with 2.5+ peers) plus `--data-ciphers-fallback none` and `--cipher none` (peers that do
//    not negotiate, i.e. 2.4-era nodes running `--ncp-disable`; `--cipher` also keeps the
//    option string the same as theirs). OpenVPN logs loud warnings about each.
// 2. With cipher "none", 2.6 treats the cipher as a 64-bit block cipher (SWEET32 rule) and
//    renegotiates the data channel every 64 MB ("reducing reneg-bytes to 64MB"); 2.4 did not.
//    `--reneg-bytes 0` is the documented way to turn that off, so unencrypted tunnels get it.
//    Encrypted tunnels negotiate AES-GCM (128-bit blocks) and are not affected.
// 3. `--link-mtu` (deprecated) no longer bounds the tunnel MTU: 2.6 keeps the tap at 1500
//    and pushes `tun-mtu 1500` to clients, so full-size packets exceed a 1500-byte path and
//    are dropped with EMSGSIZE (DF is set by `--mtu-disc yes`). The tap MTU is set instead
//    with `--tun-mtu`, chosen so that the UDP payload stays within the reference's client
//    link MTU (1432 over IPv4, 1450 over IPv6): tun-mtu = link MTU − 42, where 42 = 14
//    (Ethernet header of the tap frame) + 28 (data channel: 4 opcode/peer-id, 4 packet id,
//    20 HMAC-SHA1 without cipher; AES-GCM needs 24). Server and client use the same value
//    (the reference's server-side +93 compensated a 2.4.7 quirk that 2.6 no longer has).
// 4. Hooks: the reference passes an inherited file descriptor number as hook argument;
//    here every hook is one program (a wrapper script that runs `re6st ovpn-hook`, see
//    core/openvpn/hooks.ts) that reports over a unix socket, so hooks take no argument.

import type { Address } from "../addressing.ts";
import { LINK_MTU_CLIENT_UDP4, LINK_MTU_CLIENT_UDP6, TAP_PREFIX } from "../constants.ts";

/** Implementation: bytes between the tap MTU and the OpenVPN UDP payload (see note 3). */
export const TUN_MTU_OVERHEAD = 42;
/** Implementation: tap MTU of UDP tunnels over IPv4 / IPv6 (1390 / 1408). */
export const TUN_MTU_UDP4 = LINK_MTU_CLIENT_UDP4 - TUN_MTU_OVERHEAD;
export const TUN_MTU_UDP6 = LINK_MTU_CLIENT_UDP6 - TUN_MTU_OVERHEAD;

/** Protocols of `--pp` (one OpenVPN server each, §8.1.2). */
export type ServerProto = "udp" | "tcp" | "udp6" | "tcp6";

/** What every OpenVPN process of a node shares (§8.1.1). */
export interface CommonArgs {
  /** Program OpenVPN runs for every hook (`--up`, `--route-up`, `--client-connect`, ...). */
  hook: string;
  /** PATH given to hooks (`--setenv PATH`); OpenVPN does not pass its own environment. */
  path: string;
  /** Network parameter `encrypt`: false means an unencrypted data channel. */
  encrypt: boolean;
  /** Babel hello interval, seconds; `--ping-exit`/`--ping-restart` get 4× this. */
  hello: number;
  ca: string;
  cert: string;
  key: string;
  /** User `-O` arguments, appended as given. */
  extra?: readonly string[];
  /** IPv4 payload (§1.6): `--ifconfig <address> <netmask>`. */
  ipv4?: { address: string; netmask: string };
  /** With `--ovpnlog`: each process appends to `<logDir>/<interface>.log`. */
  logDir?: string;
}

/** One OpenVPN server (§8.1.2). */
export interface ServerArgs {
  port: number;
  proto: ServerProto;
  /** Diffie-Hellman parameters file. */
  dh: string;
  maxClients: number;
  /** Tap interface; default `re6stnet-<proto>`. */
  iface?: string;
}

/** One client tunnel to one address of a peer (§8.1.3). */
export interface ClientArgs {
  /** Tap interface, e.g. `re6stnet3`. */
  iface: string;
  remote: Pick<Address, "ip" | "port" | "proto">;
  /** Common name the server's certificate must carry, e.g. `6/16`. */
  peerCn: string;
}

/** The tap interface of the server for `proto`, e.g. `re6stnet-udp`. */
export function serverIface(proto: ServerProto): string {
  return `${TAP_PREFIX}-${proto}`;
}

/**
 * The `--ovpnlog` file of the OpenVPN process on `iface`: `<logDir>/<iface>.log`, except for the
 * `--client` mode tap `re6stnet`, whose name is the node's own log's.
 */
export function ovpnLogFile(logDir: string, iface: string): string {
  return `${logDir}/${iface === TAP_PREFIX ? `${TAP_PREFIX}-client` : iface}.log`;
}

/** `--ping-exit`/`--ping-restart` value: 4 × hello (§0 `timeout`). */
export function tunnelTimeout(hello: number): number {
  return 4 * hello;
}

function checkServerProto(proto: string): ServerProto {
  if (proto === "udp" || proto === "tcp" || proto === "udp6" || proto === "tcp6") return proto;
  throw new Error(`Invalid OpenVPN server protocol "${proto}" (udp, tcp, udp6, tcp6)`);
}

/** Client `--remote` protocol and tap MTU of an address-list protocol (§1.5, §8.1.3). */
export function clientTransport(proto: string): { proto: string; tunMtu?: number } {
  switch (proto) {
    case "udp":
    case "udp4":
      return { proto: "udp4", tunMtu: TUN_MTU_UDP4 };
    case "udp6":
      return { proto: "udp6", tunMtu: TUN_MTU_UDP6 };
    case "tcp":
    case "tcp4":
    case "tcp6":
      return { proto };
  }
  throw new Error(`Invalid OpenVPN protocol "${proto}" (udp, tcp, udp6, tcp6)`);
}

/** Server `--proto` and tap MTU for a `--pp` protocol (§8.1.2). */
export function serverTransport(proto: ServerProto): { proto: string; tunMtu?: number } {
  switch (checkServerProto(proto)) {
    case "udp":
      return { proto: "udp4", tunMtu: TUN_MTU_UDP4 };
    case "udp6":
      return { proto: "udp6", tunMtu: TUN_MTU_UDP6 };
    case "tcp":
      return { proto: "tcp-server" };
    case "tcp6":
      return { proto: "tcp6-server" };
  }
}

function mtuArgs(tunMtu: number | undefined): string[] {
  return tunMtu === undefined ? [] : ["--tun-mtu", String(tunMtu), "--mtu-disc", "yes"];
}

function prefix(c: CommonArgs, iface: string): string[] {
  return [
    "--dev-type",
    "tap",
    "--dev",
    iface,
    "--persist-tun",
    "--persist-key",
    "--script-security",
    "2",
    "--up",
    c.hook,
    "--setenv",
    "PATH",
    c.path,
  ];
}

/** Node-wide arguments that end every role's arguments: -O, certificates, IPv4 payload. */
function extraArgs(c: CommonArgs): string[] {
  return [
    ...(c.extra ?? []),
    "--ca",
    c.ca,
    "--cert",
    c.cert,
    "--key",
    c.key,
    ...(c.ipv4 ? ["--ifconfig", c.ipv4.address, c.ipv4.netmask] : []),
  ];
}

/** Arguments after the role's: per-interface log file and the data channel cipher. */
function suffix(c: CommonArgs, iface: string): string[] {
  return [
    ...(c.logDir === undefined ? [] : ["--log-append", ovpnLogFile(c.logDir, iface)]),
    ...cipherArgs(c.encrypt),
  ];
}

/** Data channel options: none when encrypted, "no cipher" for OpenVPN 2.6 otherwise. */
export function cipherArgs(encrypt: boolean): string[] {
  if (encrypt) return [];
  return [
    "--cipher",
    "none",
    "--data-ciphers",
    "none",
    "--data-ciphers-fallback",
    "none",
    "--reneg-bytes",
    "0",
  ];
}

function checkCommon(c: CommonArgs): void {
  if (!Number.isInteger(c.hello) || c.hello <= 0) {
    throw new Error(`Invalid hello interval ${c.hello} for OpenVPN --ping-exit`);
  }
}

/** Arguments of the OpenVPN server for one `--pp` port/protocol (§8.1.2), without "openvpn". */
export function serverArgs(c: CommonArgs, s: ServerArgs): string[] {
  checkCommon(c);
  const t = serverTransport(s.proto);
  if (!Number.isInteger(s.port) || s.port <= 0 || s.port > 65535) {
    throw new Error(`Invalid OpenVPN server port ${s.port} (${s.proto})`);
  }
  if (!Number.isInteger(s.maxClients) || s.maxClients <= 0) {
    throw new Error(`Invalid max_clients ${s.maxClients} for the ${s.proto} OpenVPN server`);
  }
  const iface = s.iface ?? serverIface(s.proto);
  return [
    ...prefix(c, iface),
    "--tls-server",
    "--mode",
    "server",
    "--client-connect",
    c.hook,
    "--client-disconnect",
    c.hook,
    "--dh",
    s.dh,
    "--max-clients",
    String(s.maxClients),
    "--port",
    String(s.port),
    "--proto",
    t.proto,
    ...mtuArgs(t.tunMtu),
    "--ping-exit",
    String(tunnelTimeout(c.hello)),
    ...extraArgs(c),
    ...suffix(c, iface),
  ];
}

/** Arguments of one client tunnel to one address of a peer (§8.1.3), without "openvpn". */
export function clientArgs(c: CommonArgs, k: ClientArgs): string[] {
  checkCommon(c);
  const t = clientTransport(k.remote.proto);
  if (!k.peerCn) throw new Error(`OpenVPN client on ${k.iface}: no peer common name`);
  return [
    ...prefix(c, k.iface),
    "--nobind",
    "--client",
    "--remote",
    k.remote.ip,
    String(k.remote.port),
    t.proto,
    ...mtuArgs(t.tunMtu),
    "--verify-x509-name",
    k.peerCn,
    "name",
    "--resolv-retry",
    "0",
    "--connect-retry-max",
    "3",
    "--tls-exit",
    "--remap-usr1",
    "SIGTERM",
    "--ping-exit",
    String(tunnelTimeout(c.hello)),
    // Over UDP, the server learns at once that we leave and frees the client's slot.
    ...(t.proto.startsWith("udp") ? ["--explicit-exit-notify", "1"] : []),
    "--route-up",
    c.hook,
    ...extraArgs(c),
    ...suffix(c, k.iface),
  ];
}

/**
 * Arguments of the single client of `--client CONNECTSTRING` mode (§8.1.3): every address
 * as a `--remote`, `--ping-restart` instead of `--ping-exit`, no peer name check, no hook
 * but `--up`. All addresses must share one MTU class.
 */
export function singleClientArgs(
  c: CommonArgs,
  remotes: readonly Pick<Address, "ip" | "port" | "proto">[],
  iface = TAP_PREFIX,
): string[] {
  checkCommon(c);
  if (remotes.length === 0) throw new Error("OpenVPN --client mode: no server address");
  const ts = remotes.map((r) => clientTransport(r.proto));
  if (ts.some((t) => t.tunMtu !== ts[0].tunMtu)) {
    throw new Error(
      `OpenVPN --client mode: addresses mix MTU classes (${remotes.map((r) => r.proto)})`,
    );
  }
  return [
    ...prefix(c, iface),
    "--nobind",
    "--client",
    ...remotes.flatMap((r, i) => ["--remote", r.ip, String(r.port), ts[i].proto]),
    ...mtuArgs(ts[0].tunMtu),
    "--ping-restart",
    String(tunnelTimeout(c.hello)),
    ...extraArgs(c),
    ...suffix(c, iface),
  ];
}
