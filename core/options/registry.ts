import {
  CLIENT_COUNT_DEFAULT,
  DEFAULT_LOG_DIR,
  DEFAULT_RUN_DIR,
  DEFAULT_STATE_DIR,
  GRACE_PERIOD_S,
  HELLO_DEFAULT_S,
  PROTOCOL_VERSION,
  TUNNEL_REFRESH_DEFAULT_S,
} from "../constants.ts";
import { UsageError } from "../errors.ts";
import { checkListenOption, METRICS_OPTION } from "./listen.ts";
import type { ParsedOptions } from "./parser.ts";
import type { CommandSpec } from "./spec.ts";

/** `re6st registry` options (PROTOCOL.md §9.3). */
export const REGISTRY_SPEC: CommandSpec = {
  name: "registry",
  summary: "run the registry of a re6st network",
  usage: "re6st registry --ca FILE --key FILE [options]   or   re6st registry @FILE",
  description:
    "Runs the registry of a re6st network: hands out certificates whose common name is the " +
    "node's prefix, keeps the database of prefixes, tokens and revocations, serves the signed " +
    "network configuration, and bootstraps new nodes with the address of a live peer (through " +
    "the re6st node running on the same host). Speaks HTTP; put it behind a reverse proxy for " +
    "TLS. Options may also come from option files (@FILE or --config FILE).",
  optionFiles: true,
  options: [
    {
      long: "port",
      dest: "port",
      type: "int",
      min: 0,
      max: 65535,
      metavar: "N",
      default: 80,
      help: "HTTP port",
    },
    {
      long: "ipv4-bind",
      short: "4",
      dest: "ipv4Bind",
      type: "string",
      metavar: "ADDR",
      default: "0.0.0.0",
      help: "IPv4 address to listen on (empty: no IPv4 listener)",
    },
    {
      long: "ipv6-bind",
      short: "6",
      dest: "ipv6Bind",
      type: "string",
      metavar: "ADDR",
      default: "::",
      help: "IPv6 address to listen on (empty: no IPv6 listener)",
    },
    {
      long: "db",
      dest: "db",
      type: "string",
      path: true,
      metavar: "FILE",
      default: `${DEFAULT_STATE_DIR}/registry.db`,
      help: "SQLite database",
    },
    {
      long: "dh",
      dest: "dh",
      type: "string",
      path: true,
      metavar: "FILE",
      help: "DH parameters served to nodes [default: the RFC 7919 ffdhe2048 group]",
    },
    {
      long: "ca",
      dest: "ca",
      type: "string",
      path: true,
      metavar: "FILE",
      required: true,
      help: "CA certificate; its serial number encodes the network prefix",
    },
    {
      long: "key",
      dest: "key",
      type: "string",
      path: true,
      metavar: "FILE",
      required: true,
      help: "CA private key",
    },
    {
      long: "mailhost",
      dest: "mailhost",
      type: "string",
      metavar: "HOST[:PORT]|PATH",
      help: "SMTP server for token e-mails, or an mbox file path; unset disables requestToken",
    },
    { long: "smtp-user", dest: "smtpUser", type: "string", metavar: "USER", help: "SMTP login" },
    {
      long: "smtp-pwd",
      dest: "smtpPwd",
      type: "string",
      metavar: "PASSWORD",
      help: "SMTP password",
    },
    { long: "smtp-starttls", dest: "smtpStarttls", type: "flag", help: "use STARTTLS" },
    {
      long: "prefix-length",
      dest: "prefixLength",
      type: "int",
      min: 0,
      max: 128,
      metavar: "N",
      default: 16,
      help: "prefix length given to nodes registered by e-mail; 0 disables e-mail registration",
    },
    {
      long: "anonymous-prefix-length",
      dest: "anonymousPrefixLength",
      type: "int",
      min: 0,
      max: 128,
      metavar: "N",
      help: "prefix length for anonymous registration; unset or 0 disables it",
    },
    {
      long: "ipv4",
      dest: "ipv4",
      type: "string",
      nargs: 2,
      metavar: "IP/N PLEN",
      help: "also carry IPv4: network IP/N, PLEN bits per node",
    },
    {
      long: "logfile",
      short: "l",
      dest: "logfile",
      type: "string",
      path: true,
      metavar: "FILE",
      default: `${DEFAULT_LOG_DIR}/registry.log`,
      help: "log file ('-' for standard error)",
    },
    {
      long: "run",
      short: "r",
      dest: "run",
      type: "string",
      path: true,
      metavar: "DIR",
      default: DEFAULT_RUN_DIR,
      help: "runtime folder of the node running on this host",
    },
    METRICS_OPTION,
    {
      long: "verbose",
      short: "v",
      dest: "verbose",
      type: "int",
      min: 0,
      max: 4,
      metavar: "N",
      default: 1,
      help: "log level: 0 off, 1 warning, 2 info, 3 debug, 4 trace",
    },
    {
      long: "min-protocol",
      dest: "minProtocol",
      type: "int",
      min: 1,
      max: PROTOCOL_VERSION,
      metavar: "N",
      default: 1,
      help: "lowest node protocol allowed in the network",
    },
    {
      long: "authorized-origin",
      dest: "authorizedOrigin",
      type: "string",
      append: true,
      metavar: "IP",
      help: "address allowed to call private methods, besides 127.0.0.1 and ::1",
    },
    {
      long: "community",
      dest: "community",
      type: "string",
      path: true,
      metavar: "FILE",
      help: "communities file: prefixes reserved for countries or continents (nodes are " +
        "placed by location only with GEOIP2_MMDB set, see below)",
    },
    {
      long: "grace-period",
      dest: "gracePeriod",
      type: "int",
      min: 0,
      metavar: "S",
      default: GRACE_PERIOD_S,
      help: "seconds an expired certificate (or unused token) is kept before its prefix is freed",
    },
    {
      long: "hello",
      dest: "hello",
      type: "int",
      min: 1,
      metavar: "S",
      default: HELLO_DEFAULT_S,
      help: "babel hello interval published to nodes",
    },
    { long: "encrypt", dest: "encrypt", type: "flag", help: "encrypt OpenVPN data channels" },
    {
      long: "client-count",
      dest: "clientCount",
      type: "int",
      min: 0,
      metavar: "N",
      default: CLIENT_COUNT_DEFAULT,
      help: "number of client tunnels each node opens",
    },
    {
      long: "max-clients",
      dest: "maxClients",
      type: "int",
      min: 0,
      metavar: "N",
      help: "maximum clients per OpenVPN server [default: 2 × client-count]",
    },
    {
      long: "tunnel-refresh",
      dest: "tunnelRefresh",
      type: "int",
      min: 1,
      metavar: "S",
      default: TUNNEL_REFRESH_DEFAULT_S,
      help: "seconds between tunnel replacements on nodes",
    },
    {
      long: "max-connections",
      dest: "maxConnections",
      type: "int",
      min: 1,
      metavar: "N",
      default: 1000,
      help: "open HTTP connections at most (lowered to fit the open-file limit); beyond it the " +
        "oldest idle connection is closed",
    },
    {
      long: "max-connections-per-source",
      dest: "maxConnectionsPerSource",
      type: "int",
      min: 0,
      metavar: "N",
      default: 64,
      help: "open HTTP connections per source (an IPv4 address or an IPv6 /64; authorized " +
        "origins exempt), the oldest idle one closed first; 0: no cap",
    },
    {
      long: "header-timeout",
      dest: "headerTimeout",
      type: "number",
      min: 0.01,
      metavar: "S",
      default: 10,
      help: "seconds a client has to send a request's headers before its connection is closed",
    },
    {
      long: "idle-timeout",
      dest: "idleTimeout",
      type: "number",
      min: 0.01,
      metavar: "S",
      default: 30,
      help: "seconds a kept-alive connection may wait for its next request",
    },
    {
      long: "key-switch-delay",
      dest: "keySwitchDelay",
      type: "number",
      min: 0,
      metavar: "S",
      default: 60,
      help: "in the second phase of a Babel key rotation (updateHMAC), every node switches to " +
        "the new key S seconds after the call, at the same moment (published as " +
        "babel_key_switch_at, docs/babel-key-rotation.md); longer than the new configuration " +
        "takes to reach every node",
    },
    {
      long: "rate-limit",
      dest: "rateLimit",
      type: "int",
      min: 0,
      metavar: "N",
      default: 120,
      help: "requestCertificate and requestToken calls per minute and source (an IPv4 address " +
        "or an IPv6 /64; authorized origins exempt, behind them the last X-Forwarded-For " +
        "address counts), answered 429 beyond; 0: no limit",
    },
    {
      long: "same-country",
      dest: "sameCountry",
      type: "string",
      append: true,
      metavar: "CODE",
      help: "country (ISO code, e.g. FR) whose borders tunnels must not cross (published " +
        "same_country); needs GEOIP2_MMDB: refused at start without it",
    },
  ],
  epilog: "Environment: GEOIP2_MMDB=FILE names a MaxMind country (or city) database, e.g.\n" +
    "/etc/re6stnet/GeoLite2-Country.mmdb. With it, requestCertificate places a node in the\n" +
    "community of its location (the 'location' parameter, re6st conf --location CC,CONT, else\n" +
    "the country and continent of its address), getCountry answers, and --same-country is\n" +
    "accepted. A file that cannot be read is an error at start. Without it every node goes to\n" +
    "the default community, getCountry answers 400 and --same-country is refused.\n" +
    "\n" +
    "RSA work (signatures, encryption for nodes) goes through the system's OpenSSL\n" +
    "(libcrypto.so.3, needs --allow-ffi when run from source) and falls back to built-in code,\n" +
    "several times slower, when it cannot be loaded; the log says which. RE6ST_LIBCRYPTO=PATH\n" +
    "loads another libcrypto, RE6ST_LIBCRYPTO=none the built-in code.",
};

/** Options of `re6st registry`, typed and checked. */
export interface RegistryOptions {
  config?: string;
  port: number;
  ipv4Bind: string;
  ipv6Bind: string;
  db: string;
  dh?: string;
  ca: string;
  key: string;
  mailhost?: string;
  smtpUser?: string;
  smtpPwd?: string;
  smtpStarttls: boolean;
  prefixLength: number;
  anonymousPrefixLength?: number;
  ipv4?: { network: string; sublen: number };
  logfile: string;
  run: string;
  verbose: number;
  minProtocol: number;
  /** Includes the defaults 127.0.0.1 and ::1. */
  authorizedOrigin: string[];
  community?: string;
  gracePeriod: number;
  hello: number;
  encrypt: boolean;
  clientCount: number;
  maxClients: number;
  tunnelRefresh: number;
  sameCountry: string[];
  maxConnections: number;
  maxConnectionsPerSource: number;
  /** Seconds. */
  headerTimeout: number;
  /** Seconds. */
  idleTimeout: number;
  /** Calls per minute and source; 0 for none. */
  rateLimit: number;
  /** Seconds from the second updateHMAC phase to the nodes' shared key switch. */
  keySwitchDelay: number;
  /** `--metrics ADDR:PORT` (checked), or undefined when metrics are off. */
  metrics?: string;
}

/** Checks and types parsed `re6st registry` options. */
export function toRegistryOptions(p: ParsedOptions): RegistryOptions {
  let ipv4: RegistryOptions["ipv4"];
  if (p.ipv4) {
    const [net, plen] = p.ipv4 as [string, string];
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(net);
    if (!m || m.slice(1, 5).some((x) => Number(x) > 255) || Number(m[5]) > 32) {
      throw new UsageError(`option --ipv4: invalid network "${net}" (expected a.b.c.d/N)`);
    }
    if (!/^\d+$/.test(plen) || Number(plen) + Number(m[5]) > 32) {
      throw new UsageError(`option --ipv4: invalid bits per node "${plen}"`);
    }
    ipv4 = {
      network: `${m.slice(1, 5).map(Number).join(".")}/${Number(m[5])}`,
      sublen: Number(plen),
    };
  }
  for (const code of p.sameCountry as string[]) {
    if (!/^[A-Za-z]{2}$/.test(code)) {
      throw new UsageError(
        `option --same-country: expected a country code (e.g. FR), got "${code}"`,
      );
    }
  }
  const clientCount = p.clientCount as number;
  return {
    config: p.config as string | undefined,
    port: p.port as number,
    ipv4Bind: p.ipv4Bind as string,
    ipv6Bind: p.ipv6Bind as string,
    db: p.db as string,
    dh: p.dh as string | undefined,
    ca: p.ca as string,
    key: p.key as string,
    mailhost: p.mailhost as string | undefined,
    smtpUser: p.smtpUser as string | undefined,
    smtpPwd: p.smtpPwd as string | undefined,
    smtpStarttls: p.smtpStarttls as boolean,
    prefixLength: p.prefixLength as number,
    anonymousPrefixLength: p.anonymousPrefixLength as number | undefined,
    ipv4,
    logfile: p.logfile as string,
    run: p.run as string,
    verbose: p.verbose as number,
    minProtocol: p.minProtocol as number,
    authorizedOrigin: ["127.0.0.1", "::1", ...(p.authorizedOrigin as string[])],
    community: p.community as string | undefined,
    gracePeriod: p.gracePeriod as number,
    hello: p.hello as number,
    encrypt: p.encrypt as boolean,
    clientCount,
    maxClients: (p.maxClients as number | undefined) ?? 2 * clientCount,
    tunnelRefresh: p.tunnelRefresh as number,
    sameCountry: (p.sameCountry as string[]).map((c) => c.toUpperCase()),
    maxConnections: p.maxConnections as number,
    maxConnectionsPerSource: p.maxConnectionsPerSource as number,
    headerTimeout: p.headerTimeout as number,
    idleTimeout: p.idleTimeout as number,
    rateLimit: p.rateLimit as number,
    keySwitchDelay: p.keySwitchDelay as number,
    metrics: checkListenOption(p.metrics, "metrics"),
  };
}
