// Options of `re6st registry` (PROTOCOL.md §9.3) as a plain object, and their defaults.

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

/** `re6st registry` options: camelCase of the long options of §9.3. */
export interface RegistryConfig {
  /** HTTP port (default 80; 0 picks a free one, tests). */
  port?: number;
  /** IPv4 bind address (`-4`, default "0.0.0.0"; "" = no IPv4 listener). */
  ipv4Bind?: string;
  /** IPv6 bind address (`-6`, default "::"; "" = no IPv6 listener). */
  ipv6Bind?: string;
  /** SQLite database path (default /var/lib/re6stnet/registry.db). */
  db?: string;
  /** DH parameter file served by getDh (default: the RFC 7919 ffdhe2048 group). */
  dh?: string;
  /** CA certificate (required). */
  ca: string;
  /** CA private key (required). */
  key: string;
  /** SMTP "host[:port]" or an mbox file path; unset disables requestToken. */
  mailhost?: string;
  smtpUser?: string;
  smtpPwd?: string;
  smtpStarttls?: boolean;
  /** Prefix length of e-mail registrations (default 16; 0 disables them). */
  prefixLength?: number;
  /** Prefix length of anonymous registrations (unset or 0 disables them). */
  anonymousPrefixLength?: number;
  /** IPv4 payload: network "IP/N" and bits per node (§1.6). */
  ipv4?: { network: string; sublen: number };
  /** Log file (default /var/log/re6stnet/registry.log). */
  logfile?: string;
  /** Run directory of the local node, where babeld.sock is (default /var/run/re6stnet). */
  run?: string;
  /** Verbosity 0..4 (default 1). */
  verbose?: number;
  /** Published min_protocol, 1..10 (default 1). */
  minProtocol?: number;
  /** Extra authorized origins of private methods (added to 127.0.0.1 and ::1). */
  authorizedOrigin?: string[];
  /** Communities file (§5.4). */
  community?: string;
  /** Grace period in seconds (default 8 640 000). */
  gracePeriod?: number;
  /** Published hello interval (default 15). */
  hello?: number;
  /** Published encrypt (default false). */
  encrypt?: boolean;
  /** Published client_count (default 10). */
  clientCount?: number;
  /** Published max_clients (default 2 × clientCount). */
  maxClients?: number;
  /** Published tunnel_refresh (default 300). */
  tunnelRefresh?: number;
  /** Published same_country codes. */
  sameCountry?: string[];
}

/** RegistryConfig with every default filled in. */
export type ResolvedRegistryConfig =
  & Required<Omit<RegistryConfig, OptionalKeys>>
  & Pick<RegistryConfig, OptionalKeys>;
type OptionalKeys = "mailhost" | "smtpUser" | "smtpPwd" | "ipv4" | "community" | "dh";

/** A registry option has a value outside its range. */
export class RegistryConfigError extends Error {
  override name = "RegistryConfigError";
}

/** Fills in the defaults of §9.3 and checks ranges; throws RegistryConfigError. */
export function resolveRegistryConfig(c: RegistryConfig): ResolvedRegistryConfig {
  const clientCount = c.clientCount ?? CLIENT_COUNT_DEFAULT;
  const r: ResolvedRegistryConfig = {
    port: c.port ?? 80,
    ipv4Bind: c.ipv4Bind ?? "0.0.0.0",
    ipv6Bind: c.ipv6Bind ?? "::",
    db: c.db ?? `${DEFAULT_STATE_DIR}/registry.db`,
    dh: c.dh || undefined,
    ca: c.ca,
    key: c.key,
    mailhost: c.mailhost || undefined,
    smtpUser: c.smtpUser,
    smtpPwd: c.smtpPwd,
    smtpStarttls: c.smtpStarttls ?? false,
    prefixLength: c.prefixLength ?? 16,
    anonymousPrefixLength: c.anonymousPrefixLength ?? 0,
    ipv4: c.ipv4,
    logfile: c.logfile ?? `${DEFAULT_LOG_DIR}/registry.log`,
    run: c.run ?? DEFAULT_RUN_DIR,
    verbose: c.verbose ?? 1,
    minProtocol: c.minProtocol ?? 1,
    authorizedOrigin: [...new Set(["127.0.0.1", "::1", ...(c.authorizedOrigin ?? [])])],
    community: c.community,
    gracePeriod: c.gracePeriod ?? GRACE_PERIOD_S,
    hello: c.hello ?? HELLO_DEFAULT_S,
    encrypt: c.encrypt ?? false,
    clientCount,
    maxClients: c.maxClients ?? 2 * clientCount,
    tunnelRefresh: c.tunnelRefresh ?? TUNNEL_REFRESH_DEFAULT_S,
    sameCountry: c.sameCountry ?? [],
  };
  const int = (name: keyof RegistryConfig, v: number, min: number, max = 2 ** 31) => {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RegistryConfigError(`Invalid --${kebab(name)} ${v}: expected ${min}..${max}`);
    }
  };
  int("port", r.port, 0, 65535);
  int("prefixLength", r.prefixLength, 0, 128);
  int("anonymousPrefixLength", r.anonymousPrefixLength, 0, 128);
  int("minProtocol", r.minProtocol, 1, PROTOCOL_VERSION);
  int("gracePeriod", r.gracePeriod, 0);
  int("hello", r.hello, 1);
  int("clientCount", r.clientCount, 0);
  int("maxClients", r.maxClients, 0);
  int("tunnelRefresh", r.tunnelRefresh, 1);
  int("verbose", r.verbose, 0, 4);
  if (r.ipv4) int("ipv4", r.ipv4.sublen, 0, 32);
  for (const [k, v] of [["ca", r.ca], ["key", r.key]]) {
    if (!v) throw new RegistryConfigError(`Missing --${k}`);
  }
  return r;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}
