// UPnP port forwarding for the node's IPv4 OpenVPN servers (PROTOCOL.md §7.10): find the
// gateway, map each server's port (its own port when free, else another), advertise the
// external address and ports, renew before the lease ends, remove the mappings at stop and,
// through the record (record.ts), those a killed node left. No I/O of its own: the gateway
// client, the record's store and the clock are passed in.

import { type Address, isPublicIpv4 } from "../addressing.ts";
import {
  UPNP_LEASE_S,
  UPNP_PORT_RANGE,
  UPNP_PORT_TRIES,
  UPNP_RETRY_S,
  UPNP_SEARCH_MS,
} from "../constants.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { backoffDelays, type Clock } from "../clock.ts";
import {
  type Gateway,
  type MappingProtocol,
  type PortMapper,
  UPNP_CONFLICT,
  UPNP_NO_SUCH_ENTRY,
  UPNP_ONLY_PERMANENT_LEASES,
  upnpCode,
  UpnpError,
} from "./port_mapper.ts";
import {
  formatRecord,
  readRecord,
  type RecordedMapping,
  removeLeftovers,
  type UpnpStore,
} from "./record.ts";

/** An OpenVPN server of the node; only `udp` and `tcp` (IPv4) ones are mapped. */
export interface UpnpServer {
  port: number;
  proto: string;
}

/** What {@link createUpnpForwarding} works with. */
export interface UpnpOptions {
  mapper: PortMapper;
  /** The record of our mappings (`<run>/upnp.json`). */
  store: UpnpStore;
  clock: Clock;
  log: Logger;
  /** Description of every mapping, what tells ours apart on the gateway (default "re6st"). */
  description?: string;
  leaseS?: number;
  searchMs?: number;
  /** Source of the pseudo-random external ports (default Math.random). */
  random?: () => number;
  /** Called when the advertised entries change after start() (renewal, loss, new port). */
  onChange?: (addresses: Address[]) => void;
}

/** Outcome of {@link UpnpForwarding.start}. */
export type UpnpResult =
  | { kind: "mapped"; gateway: string; externalIp: string; addresses: Address[] }
  | { kind: "client-only"; reason: string };

/** One mapping, for the node's status document. */
export interface UpnpMappingStatus {
  /** `udp` or `tcp`, as in address lists. */
  protocol: string;
  externalIp: string;
  externalPort: number;
  internalClient: string;
  internalPort: number;
  /** ISO time at which the lease ends unless renewed; null for a permanent mapping. */
  leaseEnd: string | null;
}

/** UPnP part of the node's status. */
export interface UpnpStatus {
  state: "searching" | "mapped" | "client-only" | "stopped";
  /** Control URL of the gateway in use, or null. */
  gateway: string | null;
  externalIp: string | null;
  mappings: UpnpMappingStatus[];
  /** Why the last try failed (in part or whole), null after a full success. */
  lastError: string | null;
}

/** The node's UPnP port forwarding. */
export interface UpnpForwarding {
  /**
   * Removes what a previous run left, finds the gateway and maps `servers`; then keeps the
   * mappings renewed (and keeps searching when none could be made) until stop().
   */
  start(servers: readonly UpnpServer[]): Promise<UpnpResult>;
  /** The entries to advertise now: external IP, external port, udp/tcp (§1.5). */
  addresses(): Address[];
  status(): UpnpStatus;
  /** Renews (or searches) now rather than at the planned time. */
  refresh(): void;
  /** Stops renewing and removes our mappings from the gateway. */
  stop(): Promise<void>;
}

interface Mapped {
  protocol: MappingProtocol;
  externalPort: number;
  internalClient: string;
  /** Milliseconds; null for a permanent mapping. */
  leaseEnd: number | null;
}

/** Creates the node's UPnP port forwarding (nothing happens before start()). */
export function createUpnpForwarding(opts: UpnpOptions): UpnpForwarding {
  const { mapper, store, clock, log } = opts;
  const leaseS = opts.leaseS ?? UPNP_LEASE_S;
  const searchMs = opts.searchMs ?? UPNP_SEARCH_MS;
  const description = opts.description ?? "re6st";
  const random = opts.random ?? Math.random;
  let servers: UpnpServer[] = [];
  let gw: Gateway | null = null;
  /** The gateway did not answer last time: search again before the next call. */
  let lost = true;
  let leftoversDone = false;
  let externalIp: string | null = null;
  const mapped = new Map<UpnpServer, Mapped>();
  let state: UpnpStatus["state"] = "searching";
  let lastError: string | null = null;
  let announced = "";
  let stopped = false;
  let wake = new AbortController();
  /** The first try (start) and then the renewal loop; stop() waits for it. */
  let running: Promise<void> = Promise.resolve();
  let nextAt = 0;
  let retryDelay = backoffDelays(UPNP_RETRY_S[0] * 1000, UPNP_RETRY_S[1] * 1000);
  let failing = false;

  const live = (m: Mapped) => m.leaseEnd === null || m.leaseEnd > clock.now();
  const addresses = (): Address[] =>
    externalIp === null ? [] : servers.flatMap((s) => {
      const m = mapped.get(s);
      return m && live(m)
        ? [{ ip: externalIp!, port: m.externalPort, proto: s.proto as Address["proto"] }]
        : [];
    });
  const describeMapping = (s: UpnpServer, m: Mapped) =>
    `${externalIp}:${m.externalPort}/${s.proto} → ${m.internalClient}:${s.port}`;
  const mappingList = () =>
    servers.flatMap((s) => mapped.has(s) ? [describeMapping(s, mapped.get(s)!)] : []).join(", ");

  /** Writes the record: our mappings, plus `next` when about to be made (so a kill is safe). */
  const save = async (next?: RecordedMapping) => {
    if (!gw) return;
    const list: RecordedMapping[] = servers.flatMap((s) => {
      const m = mapped.get(s);
      return m ? [recorded(m.protocol, m.externalPort, s)] : [];
    });
    if (next) list.push(next);
    const record = {
      gateway: gw.controlUrl,
      internalClient: gw.localAddress,
      description,
      mappings: list,
    };
    try {
      await (list.length ? store.write(formatRecord(record)) : store.remove());
    } catch (e) {
      log.warn(
        `Cannot record the UPnP mappings: ${describeError(e)}; if the node is killed, ` +
          "the next start cannot remove them (they expire with their lease)",
      );
    }
  };

  /** Maps (or renews) server `s`: its current external port, its own port, then others. */
  const mapOne = async (g: Gateway, s: UpnpServer) => {
    const protocol: MappingProtocol = s.proto === "udp" ? "UDP" : "TCP";
    const current = mapped.get(s);
    let lease = current && current.leaseEnd === null ? 0 : leaseS;
    const [lo, hi] = UPNP_PORT_RANGE;
    const ports = [...new Set([current?.externalPort ?? s.port, s.port])];
    const span = hi - lo + 1;
    while (ports.length < UPNP_PORT_TRIES) {
      let p = lo + Math.floor(random() * span);
      while (ports.includes(p)) p = lo + (p - lo + 1) % span;
      ports.push(p);
    }
    for (const externalPort of ports) {
      if (stopped) return;
      const req = { protocol, externalPort, internalPort: s.port, description };
      await save(
        externalPort === current?.externalPort ? undefined : recorded(protocol, externalPort, s),
      );
      try {
        try {
          await mapper.addMapping(g, { ...req, leaseS: lease });
        } catch (e) {
          if (lease === 0 || upnpCode(e) !== UPNP_ONLY_PERMANENT_LEASES) throw e;
          lease = 0;
          await mapper.addMapping(g, { ...req, leaseS: 0 });
        }
      } catch (e) {
        if (upnpCode(e) !== UPNP_CONFLICT) throw e;
        // Taken by another client (ours lapsed, if it was ours): no longer ours to advertise.
        if (externalPort === current?.externalPort) mapped.delete(s);
        continue;
      }
      const leaseEnd = lease ? clock.now() + lease * 1000 : null;
      mapped.set(s, { protocol, externalPort, internalClient: g.localAddress, leaseEnd });
      await save();
      return;
    }
    throw new Error(`external ports ${ports.join(", ")} are all taken on the gateway`);
  };

  /** Searches the gateway; the first time, removes what a previous run left on it. */
  const findGateway = async (): Promise<Gateway> => {
    const found = await mapper.discover(searchMs);
    if (!found) throw new NoGateway(`no UPnP gateway answered within ${searchMs} ms`);
    if (gw && gw.controlUrl !== found.controlUrl) {
      log.info(`UPnP gateway is now ${found.controlUrl} (was ${gw.controlUrl})`);
    }
    gw = found;
    lost = false;
    if (leftoversDone) return found;
    leftoversDone = true;
    const record = await readRecord(store, log);
    if (record && sameHost(record.gateway, found.controlUrl)) {
      await removeLeftovers(mapper, found, record, log);
    } else if (record) {
      log.info(
        `Not removing the UPnP mappings recorded on gateway ${record.gateway}: ` +
          `the gateway is now ${found.controlUrl}; they expire with their lease`,
      );
    }
    return found;
  };

  /** One try: search if needed, check the external address, map or renew every server. */
  const reconcile = async (): Promise<string[]> => {
    const g = lost || !gw ? await findGateway() : gw;
    const ip = await mapper.externalAddress(g);
    if (!isPublicIpv4(ip)) {
      throw new Error(
        `the external address of UPnP gateway ${g.controlUrl} is ${ip}, not a public ` +
          "address (another NAT beyond it?): a mapping there would not make this node reachable",
      );
    }
    externalIp = ip;
    const problems: string[] = [];
    for (const s of servers) {
      if (stopped) break;
      try {
        await mapOne(g, s);
      } catch (e) {
        problems.push(`${s.port}/${s.proto}: ${describeError(e)}`);
        if (e instanceof UpnpError && e.code !== undefined) continue;
        // The gateway did not answer: search again at the next try, rather than wait here.
        lost = true;
        break;
      }
    }
    return problems;
  };

  /** Runs one try, logs what an operator needs, and plans the next one. */
  const cycle = async (first: boolean) => {
    const before = first ? null : announced;
    let problems: string[];
    let heading = "UPnP port mapping failed: ";
    try {
      problems = await reconcile();
    } catch (e) {
      if (e instanceof NoGateway) heading = "";
      else if (!(e instanceof UpnpError) || e.code === undefined) lost = true;
      problems = [describeError(e)];
    }
    if (stopped) return;
    const now = addresses();
    announced = now.map((a) => `${a.ip}:${a.port}/${a.proto}`).join(", ");
    state = now.length ? "mapped" : "client-only";
    lastError = problems.length ? problems.join("; ") : null;
    const delay = problems.length ? retryDelay() : leaseS * 500;
    if (!problems.length) {
      retryDelay = backoffDelays(UPNP_RETRY_S[0] * 1000, UPNP_RETRY_S[1] * 1000);
    }
    const ends = [...mapped.values()].filter(live).map((m) => m.leaseEnd ?? Infinity);
    nextAt = Math.min(clock.now() + delay, ...ends);
    const next = `${Math.round((nextAt - clock.now()) / 1000)} s`;
    if (problems.length && (first || !failing)) {
      const what = now.length
        ? `mapped only ${mappingList()}`
        : "no port mapped (client-only over IPv4: peers cannot open tunnels to us through the NAT)";
      const why = heading ? heading + lastError : capitalized(lastError!);
      const hint = heading
        ? ""
        : " (enable UPnP on the router, or forward the ports and give --ip)";
      log.warn(`${why}: ${what}; trying again in ${next}${hint}`);
    } else if (problems.length) {
      log.debug(`UPnP still failing: ${lastError}; trying again in ${next}`);
    } else if (first || failing || announced !== before) {
      log.info(
        `UPnP gateway ${gw!.controlUrl} maps ${mappingList()} ` +
          `(lease ${leaseS} s, renewed every ${leaseS / 2} s)`,
      );
    } else {
      log.debug(`UPnP mappings renewed: ${mappingList()}`);
    }
    failing = problems.length > 0;
    if (!first && announced !== before) opts.onChange?.(now);
  };

  const run = async () => {
    while (!stopped) {
      wake = new AbortController();
      await clock.sleep(Math.max(0, nextAt - clock.now()), wake.signal);
      if (stopped) return;
      await cycle(false);
    }
  };

  return {
    async start(list) {
      servers = list.filter((s) => s.proto === "udp" || s.proto === "tcp");
      if (!servers.length) {
        state = "client-only";
        // Nothing to map, but maybe mappings of a killed run to remove.
        if (await store.read().catch(() => null) !== null) {
          await findGateway().then(() => save(), (e) => {
            log.warn(`Cannot remove the UPnP mappings of a previous run: ${describeError(e)}`);
          });
        }
        return { kind: "client-only", reason: "no IPv4 OpenVPN server to map" };
      }
      running = cycle(true);
      await running;
      if (stopped) return { kind: "client-only", reason: "stopped while starting" };
      running = run();
      const now = addresses();
      if (!now.length) return { kind: "client-only", reason: lastError ?? "no port mapped" };
      return { kind: "mapped", gateway: gw!.controlUrl, externalIp: externalIp!, addresses: now };
    },
    addresses,
    status() {
      return {
        state,
        gateway: gw?.controlUrl ?? null,
        externalIp,
        mappings: servers.flatMap((s) => {
          const m = mapped.get(s);
          if (!m || !live(m) || externalIp === null) return [];
          return [{
            protocol: s.proto,
            externalIp,
            externalPort: m.externalPort,
            internalClient: m.internalClient,
            internalPort: s.port,
            leaseEnd: m.leaseEnd === null ? null : new Date(m.leaseEnd).toISOString(),
          }];
        }),
        lastError,
      };
    },
    refresh() {
      nextAt = clock.now();
      wake.abort();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      wake.abort();
      await running;
      state = "stopped";
      const g = gw;
      if (!g || !mapped.size) return;
      const removed: string[] = [];
      await Promise.all(servers.map(async (s) => {
        const m = mapped.get(s);
        if (!m) return;
        const what = describeMapping(s, m);
        try {
          await mapper.deleteMapping(g, m);
        } catch (e) {
          if (upnpCode(e) !== UPNP_NO_SUCH_ENTRY) {
            const end = m.leaseEnd === null ? "it is permanent" : "it expires with its lease";
            log.warn(
              `Cannot remove UPnP mapping ${what}: ${describeError(e)}; ${end}, ` +
                "and the next start tries again",
            );
            return;
          }
        }
        mapped.delete(s);
        removed.push(what);
      }));
      await save();
      if (removed.length) log.info(`Removed UPnP mappings ${removed.join(", ")}`);
    },
  };
}

/** A mapping as the record holds it. */
function recorded(protocol: MappingProtocol, externalPort: number, s: UpnpServer): RecordedMapping {
  return { protocol, externalPort, internalPort: s.port };
}

/** Whether two URLs name the same host (a restarted gateway keeps its address, not its port). */
function sameHost(a: string, b: string): boolean {
  try {
    return new URL(a).hostname === new URL(b).hostname;
  } catch {
    return false;
  }
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** No gateway answered the search. */
class NoGateway extends Error {
  override name = "NoGateway";
}
