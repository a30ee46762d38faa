// Protocol constants of re6st protocol version 10.
// "Specification" values come from PROTOCOL.md (section given per constant);
// "implementation" values are choices of this program.

// --- Specification ---

/** Protocol version spoken by this program (PROTOCOL.md §6.2, Appendix A). */
export const PROTOCOL_VERSION = 10;
/** Lowest protocol version this software can still run with (Appendix A). */
export const MIN_PROTOCOL_SUPPORTED = 1;
/** UDP port of the peer protocol (§6.1). */
export const PEER_PORT = 326;
/** Message codes of the peer protocol, first payload byte without the forward flag (§6.5). */
export const Code = {
  VERSION: 0,
  ADDRESS: 1,
  KILL_REQUEST: 2,
  KILL_RESPONSE: 3,
  NODE_INFO: 4,
  TOPOLOGY: 5,
  LOG: 7,
} as const;
/** Peers below this protocol never see country fields in address lists (§1.5, §6.5). */
export const COUNTRY_MIN_PROTOCOL = 7;
/** From this network min_protocol on, protocol-0 peers are ignored (§6.8, QUIRK Q15). */
export const PROTOCOL0_IGNORED_FROM = 7;
/** Length of session secrets and HMAC-SHA1 tags, bytes (§3.2). */
export const SECRET_BYTES = 20;
/** Length of a Babel HMAC key, bytes (§4.9). */
export const BABEL_KEY_BYTES = 16;
/** HTTP header carrying registry request/response MACs (§4.3.2). */
export const HMAC_HEADER = "Re6stHMAC";
/** Certificates are renewed this long before they expire (§3.8). */
export const RENEW_PERIOD_S = 30 * 86400;
/** Lifetime of an issued certificate (§3.5). */
export const CERT_LIFETIME_S = 365 * 86400;
/** Default registry grace period (§5.7). */
export const GRACE_PERIOD_S = 8_640_000;
/** Offset of valid_until during Babel key rotation phase 1 (§4.9). */
export const NETCONF_TEMP_S = 3600;
/** Interval of the network configuration staleness check (§7.7). */
export const NETCONF_CHECK_S = 3600;
/** Minimum delay between two hello0 messages to one peer (§6.3). */
export const HELLO0_INTERVAL_S = 60;
/** A peer stays connected this long without an answer (§6.4). */
export const CONNECTED_WINDOW_S = 60;
/** Default Babel hello interval (§4.7). */
export const HELLO_DEFAULT_S = 15;
/**
 * Implementation: Babel hellos on tunnel interfaces come this many times as often as the
 * network's hello (at least every TUNNEL_HELLO_MIN_S), so that a dead tunnel is noticed in
 * about three of them, well within two network hellos; full updates follow every four hellos.
 */
export const TUNNEL_HELLO_DIVISOR = 4;
export const TUNNEL_HELLO_MIN_S = 1;
/**
 * Implementation: longest wait before asking the registry again for a bootstrap peer after it
 * kept offering one whose tunnel had just failed.
 */
export const BOOTSTRAP_BACKOFF_MAX_S = 120;
/** Tunnel manager tick (§7.5). */
export const TUNNEL_TICK_S = 5;
/** Delay before fetching a newly announced configuration / retry (§7.7). */
export const NEW_VERSION_DELAY_S = 1;
export const NEW_VERSION_RETRY_S = 300;
/** Back-off for network config and DH fetches: start and cap (§7.1). */
export const FETCH_BACKOFF_START_S = 1;
export const FETCH_BACKOFF_MAX_S = 60;
/** Retry delay after a failed certificate renewal (§3.8). */
export const RENEW_RETRY_S = 86400;
/** Registry waits this long for answers relayed through its node (§5.8). */
export const RELAY_TIMEOUT_S = 3;
/** Registry Babel dump timeout (§5.8). */
export const REGISTRY_DUMP_TIMEOUT_S = 5;
/** Registry bootstrap candidate cache lifetime (§5.8). */
export const BOOTSTRAP_CACHE_S = 60;
/** HTTP client timeout towards the registry (§4.1). */
export const HTTP_TIMEOUT_S = 60;
/** Maximum number of peers kept in the cache (§7.2). */
export const PEER_CACHE_MAX = 200;
/** Default OpenVPN port (§7.10). */
export const OPENVPN_DEFAULT_PORT = 1194;
/** OpenVPN link MTU for clients, by protocol (§8.1). */
export const LINK_MTU_CLIENT_UDP4 = 1432;
export const LINK_MTU_CLIENT_UDP6 = 1450;
/** Babel UDP port (§8.5). */
export const BABEL_PORT = 6696;
/** Interface parameters appended to babeld's default statement (§4.7). */
export const BABEL_DEFAULT = "max-rtt-penalty 5000 rtt-max 500 rtt-decay 125";
/** Default client tunnels and tunnel refresh published by a registry (§4.7). */
export const CLIENT_COUNT_DEFAULT = 10;
export const TUNNEL_REFRESH_DEFAULT_S = 300;
/** Default disabled OpenVPN protocols (§9.2). */
export const DISABLED_PROTO_DEFAULT = ["udp", "udp6"] as const;
/** External ports tried for UPnP when a server's own port is taken (§7.10, quirk Q17). */
export const UPNP_PORT_RANGE = [32768, 40959] as const;

// --- Implementation ---

/** Software version reported by this program (code 4, User-Agent). */
export const SOFTWARE_VERSION = "0.1.0";

/** This machine as the reference names platforms, e.g. `Linux-x86_64` (code 4, User-Agent). */
export function platformString(): string {
  const os = Deno.build.os;
  return `${os.charAt(0).toUpperCase()}${os.slice(1)}-${Deno.build.arch}`;
}

/** What a node answers to code 4 (§6.5) and the registry's `versions` reports. */
export function softwareInfo(): string {
  return `${SOFTWARE_VERSION}, ${platformString()}`;
}
/** Default paths, the same as the reference (DESIGN.md). */
export const DEFAULT_STATE_DIR = "/var/lib/re6stnet";
export const DEFAULT_LOG_DIR = "/var/log/re6stnet";
export const DEFAULT_RUN_DIR = "/var/run/re6stnet";
/**
 * Name prefix of every tap device the node makes (§8.1): `re6stnet1…` for client tunnels,
 * `re6stnet-<proto>` for servers, `re6stnet` alone in `--client` mode.
 */
export const TAP_PREFIX = "re6stnet";
/** Files of the node's run folder (`--run`), by role. */
export const RUN_FILES = {
  /** Control socket that `re6st status` reads (docs/status.md). */
  control: "control.sock",
  babeldConfig: "babeld.conf",
  /** babeld's local interface; the registry on the same machine reads it too (§5.8). */
  babeldSocket: "babeld.sock",
  /** Socket the OpenVPN hook program reports to, and that program. */
  hookSocket: "ovpn-hook.sock",
  hookScript: "ovpn-hook",
  /** Kernel changes of the running node, written before each change (kill -9 recovery). */
  kernelJournal: "kernel-journal.json",
  /** Pids of the node and its children (stale-process check). */
  pids: "re6stnet.pid",
  /** UPnP mappings of the running node (kill -9 recovery, core/upnp/record.ts). */
  upnpRecord: "upnp.json",
} as const;

/** Path of a file of the run folder `run`. */
export function runFile(run: string, file: keyof typeof RUN_FILES): string {
  return `${run}/${RUN_FILES[file]}`;
}

// --- UPnP port forwarding (implementation choices, core/upnp/forwarding.ts) ---

/** Lease asked for each mapping: bounds how long a mapping outlives a node killed for good. */
export const UPNP_LEASE_S = 3600;
/** How long a search for the gateway waits for an answer (miniupnpc's default too). */
export const UPNP_SEARCH_MS = 2000;
/** Pause before trying again after a failure: first (as the reference, §7.10) and longest. */
export const UPNP_RETRY_S = [60, 3600] as const;
/** External ports tried per server (its own, then from UPNP_PORT_RANGE) before giving up. */
export const UPNP_PORT_TRIES = 8;
