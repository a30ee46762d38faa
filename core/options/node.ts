import {
  DEFAULT_LOG_DIR,
  DEFAULT_RUN_DIR,
  DEFAULT_STATE_DIR,
  DISABLED_PROTO_DEFAULT,
  OPENVPN_DEFAULT_PORT,
} from "../constants.ts";
import { parseIpv4, parseIpv6, prefixFromCn } from "../addressing.ts";
import { describeError, UsageError } from "../errors.ts";
import { checkListenOption, METRICS_OPTION } from "./listen.ts";
import type { ParsedOptions } from "./parser.ts";
import type { CommandSpec } from "./spec.ts";

/** Tunnel protocols a node can serve or use (PROTOCOL.md §1.5). */
export const PROTOCOLS = ["udp", "tcp", "udp6", "tcp6"] as const;
export type Proto = typeof PROTOCOLS[number];

/** `re6st node` options (PROTOCOL.md §9.2). */
export const NODE_SPEC: CommandSpec = {
  name: "node",
  summary: "run a re6st node (the daemon)",
  usage: "re6st node --config FILE [options]   or   re6st node @FILE [options]",
  description:
    "Runs a re6st node: gives this machine its re6st IPv6 address, opens OpenVPN tunnels to a " +
    "few random peers and accepts tunnels from others, routes over them with babeld, exchanges " +
    "addresses and network versions with peers on UDP port 326, and keeps reshaping its tunnels. " +
    "Options come from the command line, then option files (@FILE or --config FILE: `key value` " +
    "lines, # comments), then the network configuration published by the registry.",
  epilog: [
    "Restarts: when the node must start again (certificate renewal, new network parameters,",
    "its own certificate revoked), it tears everything down and re-executes the program on",
    "disk with the same arguments, in the same process (same pid), so an upgrade installed",
    "meanwhile takes effect. Exit status: 0 after SIGTERM or SIGINT, 255 after SIGHUP or",
    "SIGUSR2 (start it again), 1 when it cannot run, 2 on bad options.",
    "",
    "Environment: GEOIP2_MMDB=FILE names a MaxMind country (or city) database, e.g.",
    "/etc/re6stnet/GeoLite2-Country.mmdb. In a network that sets same_country, the node looks",
    "up the countries of peer addresses that carry none, and its own country (without",
    "--country) before asking the registry. A file that cannot be read is logged once and the",
    "node runs without it: then only peer addresses that carry a country are filtered.",
  ].join("\n"),
  optionFiles: true,
  options: [
    { long: "version", short: "V", dest: "version", type: "flag", help: "print version and exit" },
    METRICS_OPTION,
    {
      long: "ip",
      dest: "ip",
      type: "string",
      append: true,
      metavar: "ADDR",
      help: "address advertised to peers for our OpenVPN servers: an IPv4 or IPv6 literal, " +
        "'any' (learned from the address peers see us coming from) or 'upnp' (map the IPv4 " +
        "servers' ports on the LAN's UPnP gateway and advertise its external address and " +
        "ports; without a gateway, no IPv4 address is advertised). Without an IPv4 value UPnP " +
        "is tried, and when no gateway answers the address is learned. 'any'/'upnp' at most " +
        "once and not with IPv4 literals",
    },
    {
      long: "registry",
      dest: "registry",
      type: "string",
      metavar: "URL",
      required: true,
      help: "registry URL",
    },
    {
      long: "log",
      short: "l",
      dest: "log",
      type: "string",
      path: true,
      metavar: "DIR",
      default: DEFAULT_LOG_DIR,
      help: "folder of re6stnet.log, babeld.log and per-tunnel logs",
    },
    {
      long: "run",
      short: "r",
      dest: "run",
      type: "string",
      path: true,
      metavar: "DIR",
      default: DEFAULT_RUN_DIR,
      help: "runtime folder (sockets; mode 0700, removed at exit)",
    },
    {
      long: "state",
      short: "s",
      dest: "state",
      type: "string",
      path: true,
      metavar: "DIR",
      default: DEFAULT_STATE_DIR,
      help: "state folder (cache.db, babeld.state, dh.pem)",
    },
    {
      long: "verbose",
      short: "v",
      dest: "verbose",
      type: "int",
      min: 0,
      max: 4,
      metavar: "N",
      default: 2,
      help: "log level: 0 off, 1 warning, 2 info, 3 debug, 4 trace",
    },
    {
      long: "interface",
      short: "i",
      dest: "interface",
      type: "string",
      append: true,
      metavar: "IFACE",
      help: "extra interface on which babel discovers re6st nodes of the LAN",
    },
    {
      long: "main-interface",
      short: "I",
      dest: "mainInterface",
      type: "string",
      metavar: "IFACE",
      default: "lo",
      help: "interface that receives the node's re6st address",
    },
    {
      long: "multicast",
      short: "m",
      dest: "multicast",
      type: "flag",
      help: "run pim-dm for multicast routing (not supported by this implementation)",
    },
    {
      long: "up",
      dest: "up",
      type: "string",
      metavar: "CMD",
      help: "shell command run once the node is up; the node stops if it fails",
    },
    {
      long: "daemon",
      dest: "daemon",
      type: "string",
      append: true,
      metavar: "CMD",
      help: "shell command run in the background while the node runs",
    },
    {
      long: "test",
      dest: "test",
      type: "string",
      metavar: "EXPR",
      help: "reference-specific Python expression test (not supported)",
      hidden: true,
    },
    {
      long: "console",
      dest: "console",
      type: "string",
      metavar: "SOCK",
      help: "reference-specific debugging console (not supported)",
      hidden: true,
    },
    {
      long: "country",
      dest: "country",
      type: "string",
      metavar: "CODE",
      help: "own country code (e.g. FR), for networks that set same_country; without it the " +
        "country of our address comes from GEOIP2_MMDB or the registry",
    },
    {
      long: "babel-arg",
      short: "B",
      dest: "babelArgs",
      type: "string",
      append: true,
      metavar: "ARG",
      help: "extra argument for babeld",
    },
    {
      long: "default",
      short: "D",
      dest: "obsoleteDefault",
      type: "flag",
      help: "obsolete, ignored",
      hidden: true,
    },
    {
      long: "table",
      dest: "obsoleteTable",
      type: "int",
      help: "obsolete, ignored",
      hidden: true,
    },
    {
      long: "gateway",
      dest: "gateway",
      type: "flag",
      help: "export a default route (with our subnet as source prefix) to the network",
    },
    {
      long: "openvpn-arg",
      short: "O",
      dest: "openvpnArgs",
      type: "string",
      append: true,
      metavar: "ARG",
      help: "extra argument for every OpenVPN process",
    },
    { long: "ovpnlog", dest: "ovpnlog", type: "flag", help: "write one log file per OpenVPN" },
    {
      long: "pp",
      dest: "pp",
      type: "string",
      nargs: 2,
      append: true,
      metavar: "PORT PROTO",
      help: "OpenVPN server to run and advertise, in preference order " +
        `[default: ${OPENVPN_DEFAULT_PORT} udp, ${OPENVPN_DEFAULT_PORT} tcp, minus disabled]`,
    },
    {
      long: "dh",
      dest: "dh",
      type: "string",
      path: true,
      metavar: "FILE",
      help: "DH parameters file [default: fetched from the registry into <state>/dh.pem]",
    },
    {
      long: "ca",
      dest: "ca",
      type: "string",
      path: true,
      metavar: "FILE",
      required: true,
      help: "CA certificate",
    },
    {
      long: "cert",
      dest: "cert",
      type: "string",
      path: true,
      metavar: "FILE",
      required: true,
      help: "this node's certificate",
    },
    {
      long: "key",
      dest: "key",
      type: "string",
      path: true,
      metavar: "FILE",
      required: true,
      help: "this node's private key",
    },
    {
      long: "client-count",
      dest: "clientCount",
      type: "int",
      min: 0,
      metavar: "N",
      help: "number of client tunnels [default: from the network configuration]",
    },
    {
      long: "max-clients",
      dest: "maxClients",
      type: "int",
      min: 0,
      metavar: "N",
      help: "maximum clients per OpenVPN server [default: from the network configuration]",
    },
    {
      long: "remote-gateway",
      dest: "remoteGateway",
      type: "string",
      append: true,
      metavar: "GW",
      help: "gateway through which the OpenVPN servers of peers are reached",
    },
    {
      long: "disable-proto",
      dest: "disableProto",
      type: "string",
      append: true,
      choices: ["none", ...PROTOCOLS],
      metavar: "PROTO",
      help: "tunnel protocol not to use; 'none' enables all [default: udp, udp6]",
    },
    {
      long: "client",
      dest: "client",
      type: "string",
      metavar: "HOST,PORT,PROTO[;...]",
      help: "single-client mode: only connect to this server, run no server",
    },
    {
      long: "neighbour",
      dest: "neighbour",
      type: "string",
      append: true,
      metavar: "CN",
      help: "node (certificate CN, e.g. 6/16) to keep directly connected",
    },
  ],
};

/** Options of `re6st node`, typed and checked. */
export interface NodeOptions {
  config?: string;
  /** `--metrics ADDR:PORT` (checked), or undefined when metrics are off. */
  metrics?: string;
  ip: string[];
  registry: string;
  log: string;
  run: string;
  state: string;
  verbose: number;
  interface: string[];
  mainInterface: string;
  multicast: boolean;
  up?: string;
  daemon: string[];
  country?: string;
  babelArgs: string[];
  gateway: boolean;
  openvpnArgs: string[];
  ovpnlog: boolean;
  /** OpenVPN servers, [port, proto], after applying the disabled protocols. */
  pp: [number, Proto][];
  dh?: string;
  ca: string;
  cert: string;
  key: string;
  clientCount?: number;
  maxClients?: number;
  remoteGateway: string[];
  /** Disabled tunnel protocols after resolving 'none' and the default. */
  disableProto: Proto[];
  client?: string;
  neighbour: string[];
}

/** Checks and types parsed `re6st node` options (cross-option rules included). */
export function toNodeOptions(p: ParsedOptions): NodeOptions {
  const disabledRaw = p.disableProto as string[];
  const disableProto: Proto[] = disabledRaw.includes("none")
    ? []
    : disabledRaw.length
    ? [...new Set(disabledRaw as Proto[])]
    : [...DISABLED_PROTO_DEFAULT];
  const country = p.country as string | undefined;
  if (country !== undefined && !/^[A-Za-z]{2}$/.test(country)) {
    throw new UsageError(`option --country: expected a country code (e.g. FR), got "${country}"`);
  }
  const ppRaw = p.pp as [number | string, string][];
  const pp: [number, Proto][] = [];
  for (const [portText, proto] of ppRaw) {
    const port = Number(portText);
    if (!/^\d+$/.test(String(portText)) || port < 1 || port > 65535) {
      throw new UsageError(`option --pp: invalid port "${portText}"`);
    }
    if (!(PROTOCOLS as readonly string[]).includes(proto)) {
      throw new UsageError(`option --pp: invalid protocol "${proto}" (udp, tcp, udp6, tcp6)`);
    }
    if (disableProto.includes(proto as Proto)) {
      throw new UsageError(`option --pp ${port} ${proto}: protocol ${proto} is disabled`);
    }
    pp.push([port, proto as Proto]);
  }
  if (ppRaw.length === 0) {
    for (const proto of ["udp", "tcp"] as Proto[]) {
      if (!disableProto.includes(proto)) pp.push([OPENVPN_DEFAULT_PORT, proto]);
    }
  }
  if (p.multicast) throw new UsageError("option --multicast: pim-dm is not supported");
  const ip = checkIps(p.ip as string[]);
  const neighbour = p.neighbour as string[];
  for (const cn of neighbour) {
    try {
      prefixFromCn(cn);
    } catch (e) {
      throw new UsageError(`option --neighbour: ${describeError(e)}`, { cause: e });
    }
  }
  return {
    config: p.config as string | undefined,
    ip,
    registry: p.registry as string,
    log: p.log as string,
    run: p.run as string,
    state: p.state as string,
    verbose: p.verbose as number,
    interface: p.interface as string[],
    mainInterface: p.mainInterface as string,
    multicast: false,
    up: p.up as string | undefined,
    daemon: p.daemon as string[],
    country: country?.toUpperCase(),
    babelArgs: p.babelArgs as string[],
    gateway: p.gateway as boolean,
    openvpnArgs: p.openvpnArgs as string[],
    ovpnlog: p.ovpnlog as boolean,
    pp,
    dh: p.dh as string | undefined,
    ca: p.ca as string,
    cert: p.cert as string,
    key: p.key as string,
    clientCount: p.clientCount as number | undefined,
    maxClients: p.maxClients as number | undefined,
    remoteGateway: p.remoteGateway as string[],
    disableProto,
    client: p.client as string | undefined,
    neighbour,
    metrics: checkListenOption(p.metrics, "metrics"),
  };
}

/**
 * Checks `--ip` values (§7.10): IPv4 or IPv6 literals, `any` or `upnp`; `any`/`upnp` at most
 * once and not with IPv4 literals.
 */
function checkIps(ips: string[]): string[] {
  let learn: string | undefined;
  let ipv4: string | undefined;
  for (const ip of ips) {
    if (ip === "any" || ip === "upnp") {
      if (learn !== undefined) {
        throw new UsageError(`option --ip: "${learn}" and "${ip}": 'any'/'upnp' at most once`);
      }
      learn = ip;
    } else if (/^[\d.]+$/.test(ip)) {
      try {
        parseIpv4(ip);
      } catch {
        throw new UsageError(`option --ip: invalid IPv4 address "${ip}"`);
      }
      ipv4 ??= ip;
    } else if (ip.includes(":")) {
      try {
        parseIpv6(ip);
      } catch {
        throw new UsageError(`option --ip: invalid IPv6 address "${ip}"`);
      }
    } else {
      throw new UsageError(
        `option --ip: "${ip}" is not an IP address, 'any' or 'upnp' (host names are not resolved)`,
      );
    }
  }
  if (learn !== undefined && ipv4 !== undefined) {
    throw new UsageError(`option --ip: "${learn}" cannot be combined with IPv4 address "${ipv4}"`);
  }
  return ips;
}
