// Fakes for the tunnel manager's unit tests: Babel snapshots built from a topology
// description, a recording babeld, peer protocol, OpenVPN host over a recorder kernel, and an
// in-memory cache.

import { DatabaseSync } from "node:sqlite";
import {
  type Address,
  type Bits,
  cnFromPrefix,
  ipFromBits,
  prefixFromCn as bitsOf,
} from "../../core/addressing.ts";
import type { BabelRoute } from "../../core/babel/parse.ts";
import type { BabelSnapshot } from "../../core/babel/view.ts";
import { memoryLogger } from "../../core/log.ts";
import { createOwnAddresses } from "../../core/node/addresses.ts";
import { type NodeCache, openCache } from "../../core/node/cache.ts";
import { manualClock } from "../../core/clock.ts";
import type { KernelState } from "../../core/kernel.ts";
import type { ClientHost, ClientProcess } from "../../core/node/tunnels/clients.ts";
import type { BabelControl, PeerLink, TunnelSettings } from "../../core/node/tunnels/links.ts";
import { TunnelManager, type TunnelManagerOptions } from "../../core/node/tunnels/manager.ts";
import type {
  ClientConnectEvent,
  ClientDisconnectEvent,
  ConnectAnswer,
} from "../../core/openvpn/hooks.ts";
import { refusal, ServedBook } from "../../core/node/tunnels/served.ts";
import type { BootstrapPeer } from "../../core/registry/client.ts";
import { createRecorderKernel, type RecorderKernel } from "../../platform/recorder.ts";

/** 2001:db8:42::/48, the network of VECTORS.md. */
export const NET = "001000000000000100001101101110000000000001000010";

/** A 16-bit node prefix from a small number (CN `<n>/16`). */
export function P(n: number): Bits {
  return n.toString(2).padStart(16, "0");
}

/** Route destination text of a node prefix. */
function dest(p: Bits): string {
  return ipFromBits(NET + p);
}

let ids = 0;

/** One installed route. */
export function route(
  to: Bits | null,
  via: string,
  iface: string,
  refmetric: number,
  extra: Partial<BabelRoute> = {},
): BabelRoute {
  return {
    id: `r${++ids}`,
    prefix: to === null ? "::" : dest(to),
    plen: to === null ? 0 : NET.length + to.length,
    from: to === null ? ipFromBits(NET) : "::",
    fromPlen: to === null ? NET.length : 0,
    installed: true,
    routerId: "0:0:0:0:0:0:0:1",
    metric: refmetric + 96,
    refmetric,
    via,
    iface,
    ...extra,
  };
}

/** A neighbour of the snapshot: node `prefix` on `iface`, announcing itself and `behind`. */
export interface NeighbourSpec {
  prefix: Bits;
  iface: string;
  /** Nodes reached through it (distant when not neighbours themselves). */
  behind?: Bits[];
  /** Also announces a default route. */
  gateway?: boolean;
  /** Link-local address (default derived from the prefix). */
  ll?: string;
}

/** Link-local address of a fake neighbour. */
export function ll(p: Bits): string {
  return `fe80::${parseInt(p, 2).toString(16)}`;
}

/** A Babel snapshot with the given neighbours and what lies behind them. */
export function snapshot(neighbours: NeighbourSpec[], extra: BabelRoute[] = []): BabelSnapshot {
  const routes: BabelRoute[] = [];
  for (const n of neighbours) {
    const via = n.ll ?? ll(n.prefix);
    routes.push(route(n.prefix, via, n.iface, 0));
    for (const b of n.behind ?? []) routes.push(route(b, via, n.iface, 96));
    if (n.gateway) routes.push(route(null, via, n.iface, 0));
  }
  return {
    interfaces: [],
    neighbours: [],
    xroutes: [],
    routes: [...routes, ...extra],
  };
}

/** An empty snapshot. */
export const EMPTY: BabelSnapshot = { interfaces: [], neighbours: [], xroutes: [], routes: [] };

/** babeld, recording interface commands; `snap` is what dump() returns. */
export class FakeBabel implements BabelControl {
  snap: BabelSnapshot = EMPTY;
  commands: string[] = [];
  dump(): Promise<BabelSnapshot> {
    return Promise.resolve(this.snap);
  }
  addInterface(name: string, params: string): Promise<void> {
    this.commands.push(`interface ${name} ${params}`);
    return Promise.resolve();
  }
}

/** The peer protocol: records messages; only peers in `connected` get them. */
export class FakePeers implements PeerLink {
  connected = new Set<Bits>();
  sent: { to: Bits; code: number }[] = [];
  probes: Bits[] = [];
  sendTo(prefix: Bits, code: number): boolean {
    if (!this.connected.has(prefix)) return false;
    this.sent.push({ to: prefix, code });
    return true;
  }
  probe(prefix: Bits): boolean {
    this.probes.push(prefix);
    return this.connected.has(prefix);
  }
  codes(code: number): Bits[] {
    return this.sent.filter((m) => m.code === code).map((m) => m.to);
  }
}

/** An OpenVPN client process the test ends with exit(). */
export class FakeProcess implements ClientProcess {
  static #pids = 5000;
  readonly pid = FakeProcess.#pids++;
  done = false;
  stopped = false;
  readonly exited: Promise<void>;
  #resolve!: () => void;
  constructor(readonly startedAt: number, readonly iface: string, readonly remote: Address) {
    this.exited = new Promise((r) => this.#resolve = r);
  }
  exit(): void {
    this.done = true;
    this.#resolve();
  }
  stop(): Promise<void> {
    this.stopped = true;
    this.exit();
    return this.exited;
  }
}

/**
 * The machine: OpenVPN clients, and the tunnels' part of the kernel state applied to a
 * recorder kernel (with the links `lo` and `eth0`).
 */
export class FakeHost implements ClientHost {
  processes: FakeProcess[] = [];
  readonly kernelOps: RecorderKernel = createRecorderKernel({ links: ["lo", "eth0"] });
  /** Makes the next kernel change fail with this message. */
  failKernel: string | null = null;
  constructor(readonly now: () => number) {}
  startClient = (iface: string, remote: Address) => {
    const p = new FakeProcess(this.now(), iface, remote);
    this.processes.push(p);
    return Promise.resolve(p);
  };
  kernel = (state: Partial<KernelState>) => {
    const fail = this.failKernel;
    this.failKernel = null;
    if (fail) return Promise.reject(new Error(fail));
    return this.kernelOps.apply({ taps: [], addresses: [], routes: [], drained: [], ...state });
  };
  /** Taps created, in order. */
  get taps(): string[] {
    return this.kernelOps.ops.filter((l) => l.startsWith("ip tuntap add")).map((l) =>
      l.split(" ")[4]
    );
  }
  /** Route changes, as `ip` command lines. */
  get ip(): string[] {
    return this.kernelOps.ops.filter((l) => / route (add|del) /.test(l));
  }
  /** Taps whose Babel packets are dropped now. */
  get drained(): Set<string> {
    return new Set(this.kernelOps.model.drained ?? []);
  }
  /** The last process started on `iface`. */
  last(iface: string): FakeProcess | undefined {
    return this.processes.filter((p) => p.iface === iface).at(-1);
  }
}

/** An in-memory cache.db. */
export function memoryCache(): NodeCache {
  return openCache(new DatabaseSync(":memory:"), { random: () => 0.5 });
}

/** Everything a manager test needs, wired; options may be overridden. */
export function managerBench(
  o: {
    prefix?: Bits;
    settings?: Partial<TunnelSettings>;
    neighbours?: Bits[];
    bootstrap?: () => Promise<BootstrapPeer | null>;
    remoteGateways?: string[];
    ips?: string[];
    random?: () => number;
  } = {},
) {
  const clock = manualClock(1_800_000_000_000);
  const log = memoryLogger();
  const babel = new FakeBabel();
  const peers = new FakePeers();
  const cache = memoryCache();
  const host = new FakeHost(() => clock.now());
  const settings: TunnelSettings = {
    clientCount: 4,
    tunnelRefreshS: 300,
    helloS: 4,
    timeoutS: 16,
    registryPrefix: P(1),
    crl: new Set(),
    disabledProtos: ["udp", "udp6"],
    sameCountry: [],
    ...o.settings,
  };
  const bootstrapCalls: number[] = [];
  const addresses = createOwnAddresses({
    ips: o.ips ?? ["10.0.0.9"],
    servers: [{ port: 1194, proto: "tcp" }],
    network: NET,
  });
  const ownChanges: string[] = [];
  const served = new ServedBook();
  const options: TunnelManagerOptions = {
    network: NET,
    prefix: o.prefix ?? P(9),
    clock,
    log,
    random: o.random ?? (() => 0.5),
    settings: () => settings,
    neighbours: o.neighbours ?? [],
    babel,
    peers,
    cache,
    host,
    bootstrap: () => {
      bootstrapCalls.push(clock.now());
      return o.bootstrap ? o.bootstrap() : Promise.resolve(null);
    },
    addresses,
    remoteGateways: o.remoteGateways ?? [],
    babelParams: () => "type tunnel",
    onOwnAddressChange: (t) => ownChanges.push(t),
    served,
  };
  const manager = new TunnelManager(options);
  return {
    served,
    /** A client connects to our server as the node handles it: admitted, recorded, reported. */
    connect(ev: ClientConnectEvent): ConnectAnswer {
      const no = refusal(ev, {
        ourCn: cnFromPrefix(options.prefix),
        crl: settings.crl,
        clientMode: false,
      });
      if (no) return { accept: false, reason: no };
      served.connect(ev, clock.now(), "tcp");
      manager.clientConnected(bitsOf(ev.commonName));
      return { accept: true };
    },
    /** A client leaves our server as the node handles it: forgotten, then reported. */
    disconnect(ev: ClientDisconnectEvent): void {
      served.disconnect(ev.dev, ev.commonName);
      manager.clientDisconnected(ev);
    },
    /** Records `p` as a client of our server on `iface`. */
    serve(p: Bits, iface = "re6stnet-tcp", serial = 1n): void {
      served.connect(
        {
          type: "client-connect",
          dev: iface,
          commonName: cnFromPrefix(p),
          serial,
          trustedIp: "10.0.0.77",
          trustedPort: 40000,
          time: 0,
        },
        clock.now(),
        "tcp",
      );
    },
    clock,
    log,
    babel,
    peers,
    cache,
    host,
    settings,
    manager,
    bootstrapCalls,
    addresses,
    ownChanges,
  };
}

/** Address list text of a fake peer: one TCP entry (and a UDP one, disabled by default). */
export function addr(n: number, extra = ""): string {
  return `10.0.0.${n},1194,udp;10.0.0.${n},1194,tcp${extra}`;
}

/** A client-connect hook event from node `p` on server tap `dev`. */
export function clientConnect(p: Bits, dev = "re6stnet-tcp", serial = 100n): ClientConnectEvent {
  return {
    type: "client-connect",
    dev,
    commonName: cnFromPrefix(p),
    serial,
    trustedIp: "10.0.0.77",
    trustedPort: 40000,
    time: 0,
  };
}
