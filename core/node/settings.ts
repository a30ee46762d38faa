// Effective settings of a node: the command line over the network configuration
// (PROTOCOL.md §7.1 steps 3-5, §4.7, §1.6, §7.10, §9.2).

import { type Address, type Ipv4Block, ipv4Block, parseAddressList } from "../addressing.ts";
import {
  BABEL_DEFAULT,
  CLIENT_COUNT_DEFAULT,
  HELLO_DEFAULT_S,
  MIN_PROTOCOL_SUPPORTED,
  PROTOCOL_VERSION,
  TUNNEL_REFRESH_DEFAULT_S,
} from "../constants.ts";
import type { NetworkParams } from "../netconfig/document.ts";
import { serverIface } from "../openvpn/args.ts";
import type { NodeOptions, Proto } from "../options/node.ts";
import type { Identity } from "./identity.ts";

/** One OpenVPN server the node runs (§7.10, §8.1.2). */
export interface ServerSpec {
  port: number;
  proto: Proto;
  /** Tap interface, `re6stnet-<proto>`. */
  iface: string;
}

/** IPv4 payload of the node (§1.6). */
export interface Ipv4Payload extends Ipv4Block {
  /** The whole IPv4 network, e.g. `10.42.0.0/16`. */
  network: string;
}

/** What the node runs with, once options and network parameters are combined. */
export interface EffectiveSettings {
  clientCount: number;
  maxClients: number;
  tunnelRefreshS: number;
  helloS: number;
  /** 4 × hello (§0). */
  timeoutS: number;
  encrypt: boolean;
  babelDefault: string;
  /** Babel sign key (16 bytes), absent = no Babel authentication (§4.9). */
  hmacSign?: Uint8Array;
  /** Babel accept key; empty = accept unsigned packets. */
  hmacAccept?: Uint8Array;
  /**
   * When every node switches to a new sign key (ms; network parameter `babel_key_switch_at`,
   * an extension of this implementation's registry), or null: at once.
   */
  hmacSwitchAtMs: number | null;
  protocol: number;
  minProtocol: number;
  registryPrefix: string | null;
  /** Revoked certificate serials (§3.7). */
  crl: Set<bigint>;
  sameCountry: string[];
  delayRestartS: number;
  validUntil: number | null;
  /** Protocols not used for tunnels (options, plus udp6/tcp6 without IPv6 subtrees). */
  disabledProtos: Proto[];
  /** OpenVPN servers to run (none in --client mode). */
  servers: ServerSpec[];
  /** `--client` mode: the single server to connect to, else null. */
  clientMode: Address[] | null;
  ipv4: Ipv4Payload | null;
  /** Kernel supports IPv6 source routing. */
  sourceRouting: boolean;
  /** Things the operator should know (logged as warnings at start-up). */
  warnings: string[];
}

/** The node cannot run with this configuration (e.g. too old for the network). */
export class SettingsError extends Error {
  override name = "SettingsError";
}

const num = (v: unknown, dflt: number) => typeof v === "number" && Number.isFinite(v) ? v : dflt;

function key(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (v === "") return new Uint8Array(0);
  return undefined;
}

/** Combines options, network parameters and kernel facts into the node's settings. */
export function effectiveSettings(
  opts: NodeOptions,
  params: NetworkParams,
  identity: Pick<Identity, "subjectSerial">,
  sourceRouting: boolean,
): EffectiveSettings {
  const warnings: string[] = [];
  const protocol = num(params.protocol, PROTOCOL_VERSION);
  const minProtocol = num(params.min_protocol, MIN_PROTOCOL_SUPPORTED);
  if (PROTOCOL_VERSION < minProtocol) {
    throw new SettingsError(
      `This node speaks protocol ${PROTOCOL_VERSION} but the network requires at least ` +
        `${minProtocol}: upgrade re6st`,
    );
  }
  if (protocol > PROTOCOL_VERSION) {
    warnings.push(
      `The registry runs protocol ${protocol}, newer than ours (${PROTOCOL_VERSION}): ` +
        "a new version of re6st is available",
    );
  }
  const clientCount = opts.clientCount ?? num(params.client_count, CLIENT_COUNT_DEFAULT);
  const maxClients = opts.maxClients ?? num(params.max_clients, 2 * clientCount);
  const helloS = num(params.hello, HELLO_DEFAULT_S);
  const disabled = new Set<Proto>(opts.disableProto);
  if (!sourceRouting) {
    const v6 = opts.pp.filter(([, p]) => p === "udp6" || p === "tcp6");
    if (v6.length) {
      warnings.push(
        "The kernel has no IPv6 source routing (CONFIG_IPV6_SUBTREES): " +
          `not running the ${v6.map(([port, p]) => `${p} ${port}`).join(", ")} server(s)`,
      );
    }
    disabled.add("udp6");
    disabled.add("tcp6");
  }
  let clientMode: Address[] | null = null;
  if (opts.client !== undefined) {
    const skipped: string[] = [];
    clientMode = parseAddressList(opts.client, {
      onSkip: (e, why) => skipped.push(`${e}: ${why}`),
    });
    for (const s of skipped) warnings.push(`--client: ignoring "${s}"`);
    if (clientMode.length === 0) {
      throw new SettingsError(
        `option --client: no usable address in ${JSON.stringify(opts.client)}`,
      );
    }
  }
  const servers: ServerSpec[] = [];
  if (!clientMode) {
    const seen = new Set<Proto>();
    for (const [port, proto] of opts.pp) {
      // One server per protocol: the first port given wins (§7.10).
      if (disabled.has(proto) || seen.has(proto)) continue;
      seen.add(proto);
      servers.push({ port, proto, iface: serverIface(proto) });
    }
  }
  let ipv4: Ipv4Payload | null = null;
  if (typeof params.ipv4 === "string" && typeof params.ipv4_sublen === "number") {
    const serial = identity.subjectSerial;
    const block = serial === undefined ? null : ipv4Block(params.ipv4, params.ipv4_sublen, serial);
    if (block) ipv4 = { ...block, network: params.ipv4 };
    else {
      warnings.push(
        `IPv4 payload disabled: subject serial ${serial ?? "(none)"} does not fit in ` +
          `${params.ipv4_sublen} bits of ${params.ipv4}`,
      );
    }
  }
  const crlValue = params.crl;
  const crl = new Set<bigint>(
    Array.isArray(crlValue) ? crlValue.filter((x) => typeof x === "number").map(BigInt) : [],
  );
  return {
    clientCount,
    maxClients,
    tunnelRefreshS: num(params.tunnel_refresh, TUNNEL_REFRESH_DEFAULT_S),
    helloS,
    timeoutS: 4 * helloS,
    encrypt: params.encrypt === true,
    babelDefault: typeof params.babel_default === "string" ? params.babel_default : BABEL_DEFAULT,
    hmacSign: key(params.babel_hmac_sign)?.length ? key(params.babel_hmac_sign) : undefined,
    hmacAccept: key(params.babel_hmac_accept),
    hmacSwitchAtMs: typeof params.babel_key_switch_at === "number"
      ? params.babel_key_switch_at * 1000
      : null,
    protocol,
    minProtocol,
    registryPrefix: typeof params.registry_prefix === "string" ? params.registry_prefix : null,
    crl,
    sameCountry: Array.isArray(params.same_country)
      ? params.same_country.filter((x): x is string => typeof x === "string")
      : [],
    delayRestartS: num(params.delay_restart, 0),
    validUntil: typeof params.valid_until === "number" ? params.valid_until : null,
    disabledProtos: [...disabled],
    servers,
    clientMode,
    ipv4,
    sourceRouting,
    warnings,
  };
}

/**
 * Own address list from explicit `--ip` values (§7.10): every IPv4 literal with every IPv4
 * server, every IPv6 literal with every IPv6 server. Learned addresses and UPnP belong to the
 * tunnel manager.
 */
export function explicitAddresses(
  ips: readonly string[],
  servers: readonly ServerSpec[],
): Address[] {
  const out: Address[] = [];
  const v4 = ips.filter((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip));
  const v6 = ips.filter((ip) => ip.includes(":"));
  for (const ip of v4) {
    for (const s of servers) {
      if (s.proto === "udp" || s.proto === "tcp") out.push({ ip, port: s.port, proto: s.proto });
    }
  }
  for (const ip of v6) {
    for (const s of servers) {
      if (s.proto === "udp6" || s.proto === "tcp6") out.push({ ip, port: s.port, proto: s.proto });
    }
  }
  return out;
}

/** Environment of `--up` and `--daemon` commands (§8.6). */
export function nodeEnvironment(
  identity: Pick<Identity, "ip" | "subnet" | "networkCidr">,
  mainInterface: string,
): Record<string, string> {
  return {
    re6stnet_iface: mainInterface,
    re6stnet_ip: identity.ip,
    re6stnet_subnet: identity.subnet,
    re6stnet_network: identity.networkCidr,
  };
}
