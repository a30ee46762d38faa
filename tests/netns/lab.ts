/**
 * Throw-away networks made of Linux network namespaces, for netns tests and the demo.
 *
 * A lab names every namespace `r6-<pid>-<random>-<host>`, tracks every namespace and process
 * it made, and removes them all in {@link Lab.cleanup} (also on SIGINT/SIGTERM and at process
 * unload). Namespaces left by a crashed run (owner pid gone) are swept when a lab is created.
 * Nothing here touches the root namespace's addresses, routes or links: veth pairs are
 * created directly inside the hosts' namespaces.
 */
import {
  type Child,
  type ChildStatus,
  createRunner,
  type Runner,
  type RunOptions,
  type SpawnOptions,
} from "../../platform/runner.ts";
import { waitFor, type WaitOptions } from "../helpers/wait.ts";

export { waitFor, type WaitOptions };

/** Fixed prefix of every lab namespace name (used by the stale sweep). */
export const LAB_PREFIX = "r6-";

/** True when running as root (netns tests use `ignore: !isRoot`). */
export const isRoot: boolean = Deno.uid() === 0;

/** Throws unless running as root. */
export function requireRoot(): void {
  if (!isRoot) throw new Error("This needs root (network namespaces); run as root or skip");
}

/** A host of the lab: one network namespace. */
export interface Host {
  readonly name: string;
  /** The namespace's name, for `ip netns exec` / `ip -n`. */
  readonly ns: string;
  /** A runner whose commands run inside this host (give it to platform code). */
  readonly runner: Runner;
}

/** One end of a veth link or segment port. */
export interface LinkEnd {
  readonly host: string;
  readonly iface: string;
  /** IPv4 address without length, when one was assigned. */
  readonly v4?: string;
  /** IPv6 address without length, when one was assigned. */
  readonly v6?: string;
}

/** A veth pair between two hosts. */
export interface Link {
  readonly a: LinkEnd;
  readonly b: LinkEnd;
}

/** A LAN: a bridge in its own namespace with one veth per host. */
export interface Segment {
  readonly name: string;
  /** Namespace holding the bridge `br0`. */
  readonly ns: string;
  /** One end per host, in the order given. */
  readonly ends: readonly LinkEnd[];
}

/**
 * Addresses for a link or segment: a subnet (`"10.0.1.0/24"`, `"fd00:1::/64"`) from which
 * hosts get `.1`, `.2`, ... (`::1`, `::2`, ...) in order, or explicit CIDRs, one per host.
 */
export type AddressPlan = string | readonly string[];

/** What a command run with {@link Lab.exec} returned (non-zero codes do not throw). */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link Lab.spawn}: runner spawn options plus a log file for both streams. */
export interface LabSpawnOptions extends SpawnOptions {
  /** Append stdout and stderr to this file. */
  log?: string;
}

/** A throw-away network. */
export interface Lab {
  readonly name: string;
  /** Prefix of all this lab's namespaces, e.g. `r6-4242-k3f9-`. */
  readonly prefix: string;
  readonly hosts: ReadonlyMap<string, Host>;
  /** Every namespace this lab created and has not yet deleted. */
  namespaces(): string[];
  /** Creates a host: lo up, IPv4/IPv6 forwarding on, IPv6 on, DAD off, rp_filter off. */
  addHost(name: string): Promise<Host>;
  /** Returns a host by name, failing with a clear message when unknown. */
  host(name: string): Host;
  /** Connects two hosts with a veth pair (default names `to-<peer>`), up, with addresses. */
  link(
    a: string,
    b: string,
    opts?: { v4?: AddressPlan; v6?: AddressPlan; ifA?: string; ifB?: string; mtu?: number },
  ): Promise<Link>;
  /** Builds a LAN joining `hosts` (each gets interface `name`) through a bridge namespace. */
  segment(
    name: string,
    hosts: readonly string[],
    opts?: { v4?: AddressPlan; v6?: AddressPlan; mtu?: number },
  ): Promise<Segment>;
  /** Adds a route in a host: `ip route add <dst> via <via> [dev <dev>]` (dst may be "default"). */
  route(host: string, dst: string, via: string, opts?: { dev?: string }): Promise<void>;
  /** Masquerades traffic leaving `outIface` (nftables); by default also drops new inbound flows. */
  nat(host: string, outIface: string, opts?: { blockInbound?: boolean }): Promise<void>;
  /** Runs a command in a host and returns its result, whatever the exit code. */
  exec(host: string, argv: readonly string[], opts?: RunOptions): Promise<ExecResult>;
  /** Starts a long-running process in a host; it is stopped by cleanup(). */
  spawn(host: string, argv: readonly string[], opts?: LabSpawnOptions): Child;
  /** Pings `to` from a host; true when at least one reply came back. */
  ping(from: string, to: string, opts?: { count?: number; timeoutS?: number }): Promise<boolean>;
  /** Polls `fn` until it returns a truthy value (see {@link waitFor}). */
  waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>>;
  /** Sets a host's interface down. */
  linkDown(host: string, iface: string): Promise<void>;
  /** Sets a host's interface up. */
  linkUp(host: string, iface: string): Promise<void>;
  /** Stops every spawned process and deletes every namespace; safe to call twice. */
  cleanup(): Promise<void>;
}

const NAME_RE = /^[a-z0-9][a-z0-9-]*$/i;
const IFNAMSIZ = 15;

// ---- addresses -------------------------------------------------------------------------

function v4ToInt(a: string): number {
  const p = a.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) {
    throw new Error(`Invalid IPv4 address "${a}"`);
  }
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

function intToV4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function v6ToBig(a: string): bigint {
  const [head, tail, extra] = a.split("::");
  if (extra !== undefined) throw new Error(`Invalid IPv6 address "${a}"`);
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) {
    throw new Error(`Invalid IPv6 address "${a}"`);
  }
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigToV6(n: bigint): string {
  const g: string[] = [];
  for (let i = 7; i >= 0; i--) g.push(((n >> BigInt(16 * i)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return g.join(":");
  return `${g.slice(0, best).join(":")}::${g.slice(best + bestLen).join(":")}`;
}

/** Returns the n-th host address of a subnet as CIDR (`hostAddress("10.0.1.0/24", 2)`). */
export function hostAddress(subnet: string, n: number): string {
  const [addr, len] = subnet.split("/");
  if (len === undefined) throw new Error(`Subnet "${subnet}" has no prefix length`);
  if (addr.includes(":")) return `${bigToV6(v6ToBig(addr) + BigInt(n))}/${len}`;
  return `${intToV4((v4ToInt(addr) + n) >>> 0)}/${len}`;
}

function planFor(plan: AddressPlan | undefined, count: number): (string | undefined)[] {
  if (plan === undefined) return Array(count).fill(undefined);
  if (typeof plan === "string") {
    return Array.from({ length: count }, (_, i) => hostAddress(plan, i + 1));
  }
  if (plan.length !== count) {
    throw new Error(`Address plan has ${plan.length} addresses for ${count} hosts`);
  }
  return [...plan];
}

// ---- crash safety -------------------------------------------------------------------------

const liveLabs = new Set<{ cleanupSync(): void }>();
let handlersInstalled = false;

function onSignal(sig: "SIGINT" | "SIGTERM") {
  return () => {
    for (const l of liveLabs) l.cleanupSync();
    Deno.exit(sig === "SIGINT" ? 130 : 143);
  };
}
const onSigint = onSignal("SIGINT");
const onSigterm = onSignal("SIGTERM");
const onUnload = () => {
  for (const l of liveLabs) l.cleanupSync();
};

function track(l: { cleanupSync(): void }) {
  liveLabs.add(l);
  if (handlersInstalled) return;
  handlersInstalled = true;
  Deno.addSignalListener("SIGINT", onSigint);
  Deno.addSignalListener("SIGTERM", onSigterm);
  globalThis.addEventListener("unload", onUnload);
}

function untrack(l: { cleanupSync(): void }) {
  liveLabs.delete(l);
  if (!handlersInstalled || liveLabs.size) return;
  handlersInstalled = false;
  Deno.removeSignalListener("SIGINT", onSigint);
  Deno.removeSignalListener("SIGTERM", onSigterm);
  globalThis.removeEventListener("unload", onUnload);
}

function runSync(argv: string[]): { code: number; stdout: string } {
  try {
    const o = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: { LC_ALL: "C" },
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return { code: o.code, stdout: new TextDecoder().decode(o.stdout) };
  } catch {
    return { code: -1, stdout: "" };
  }
}

/** Kills every process in a namespace and deletes it (synchronous, best effort). */
function destroyNamespaceSync(ns: string): void {
  for (const pid of runSync(["ip", "netns", "pids", ns]).stdout.split(/\s+/).filter((p) => p)) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  runSync(["ip", "netns", "del", ns]);
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Lists existing namespace names (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const r = await createRunner().run(["ip", "netns", "list"]);
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter((l) => l);
}

/**
 * Deletes lab namespaces (prefix `r6-<pid>-`) whose owning process no longer exists, killing
 * what still runs in them; returns the names removed. Labs of live processes are left alone.
 */
export async function sweepStaleLabs(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await listNamespaces()) {
    const m = ns.startsWith(LAB_PREFIX) ? /^(\d+)-/.exec(ns.slice(LAB_PREFIX.length)) : null;
    if (!m || pidAlive(Number(m[1]))) continue;
    destroyNamespaceSync(ns);
    removed.push(ns);
  }
  return removed;
}

// ---- the lab ----------------------------------------------------------------------------

/** Creates an empty lab (needs root); sweeps stale labs of crashed runs first. */
export async function createLab(name = "lab"): Promise<Lab> {
  requireRoot();
  await sweepStaleLabs();
  const rand = crypto.getRandomValues(new Uint8Array(3));
  const prefix = `${LAB_PREFIX}${Deno.pid}-${Array.from(rand, (b) => b.toString(36)).join("")}-`;
  const root = createRunner();
  const hosts = new Map<string, Host>();
  const nsList: string[] = [];
  const children = new Set<Child>();
  const usedIfaces = new Map<string, Set<string>>();
  let cleaned = false;

  const host = (h: string): Host => {
    const x = hosts.get(h);
    if (!x) throw new Error(`Lab ${name}: no host "${h}" (hosts: ${[...hosts.keys()].join(", ")})`);
    return x;
  };
  const checkName = (what: string, n: string, max = 40) => {
    if (!NAME_RE.test(n) || n.length > max) {
      throw new Error(`Lab ${name}: invalid ${what} name "${n}" (letters, digits, "-"; ≤ ${max})`);
    }
  };
  const pickIface = (h: string, want: string): string => {
    const used = usedIfaces.get(h) ?? new Set<string>();
    usedIfaces.set(h, used);
    let n = want.slice(0, IFNAMSIZ);
    for (let i = 2; used.has(n); i++) n = `${want.slice(0, IFNAMSIZ - String(i).length)}${i}`;
    used.add(n);
    return n;
  };
  const newNamespace = async (ns: string) => {
    await root.run(["ip", "netns", "add", ns]);
    nsList.push(ns);
    await root.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
  };
  const addAddr = async (ns: string, iface: string, cidr: string | undefined) => {
    if (!cidr) return undefined;
    const v6 = cidr.includes(":");
    await root.run([
      "ip",
      "-n",
      ns,
      v6 ? "-6" : "-4",
      "addr",
      "add",
      cidr,
      "dev",
      iface,
      ...(v6 ? ["nodad"] : []),
    ]);
    return cidr.split("/")[0];
  };
  /** Creates a veth with one end in (nsA, ifA) and the other in (nsB, ifB), both up. */
  const veth = async (nsA: string, ifA: string, nsB: string, ifB: string, mtu?: number) => {
    const m = mtu === undefined ? [] : ["mtu", String(mtu)];
    await root.run([
      "ip",
      "-n",
      nsA,
      "link",
      "add",
      ifA,
      ...m,
      "type",
      "veth",
      "peer",
      "name",
      ifB,
      ...m,
      "netns",
      nsB,
    ]);
    await root.run(["ip", "-n", nsA, "link", "set", ifA, "up"]);
    await root.run(["ip", "-n", nsB, "link", "set", ifB, "up"]);
  };

  const self = {
    cleanupSync() {
      if (cleaned) return;
      cleaned = true;
      for (const c of children) c.kill("SIGKILL");
      for (const ns of nsList.splice(0)) destroyNamespaceSync(ns);
      untrack(self);
    },
  };
  track(self);

  const lab: Lab = {
    name,
    prefix,
    hosts,
    namespaces: () => [...nsList],
    host,

    async addHost(h) {
      checkName("host", h);
      if (hosts.has(h)) throw new Error(`Lab ${name}: host "${h}" already exists`);
      const ns = prefix + h;
      await newNamespace(ns);
      const x: Host = { name: h, ns, runner: createRunner({ netns: ns }) };
      hosts.set(h, x);
      const sysctls = [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        "net.ipv6.conf.all.disable_ipv6=0",
        "net.ipv6.conf.default.disable_ipv6=0",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv6.conf.default.forwarding=1",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
        "net.ipv6.conf.all.keep_addr_on_down=1",
        "net.ipv6.conf.default.keep_addr_on_down=1",
      ];
      await x.runner.run(["sysctl", "-q", "-w", ...sysctls]);
      return x;
    },

    async link(a, b, opts = {}) {
      const ha = host(a), hb = host(b);
      const ifA = pickIface(a, opts.ifA ?? `to-${b}`);
      const ifB = pickIface(b, opts.ifB ?? `to-${a}`);
      await veth(ha.ns, ifA, hb.ns, ifB, opts.mtu);
      const [v4a, v4b] = planFor(opts.v4, 2);
      const [v6a, v6b] = planFor(opts.v6, 2);
      return {
        a: {
          host: a,
          iface: ifA,
          v4: await addAddr(ha.ns, ifA, v4a),
          v6: await addAddr(ha.ns, ifA, v6a),
        },
        b: {
          host: b,
          iface: ifB,
          v4: await addAddr(hb.ns, ifB, v4b),
          v6: await addAddr(hb.ns, ifB, v6b),
        },
      };
    },

    async segment(seg, members, opts = {}) {
      checkName("segment", seg, IFNAMSIZ);
      const hs = members.map(host);
      const ns = `${prefix}seg-${seg}`;
      await newNamespace(ns);
      await root.run([
        "ip",
        "-n",
        ns,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
      ]);
      await root.run(["ip", "-n", ns, "link", "set", "br0", "up"]);
      const v4 = planFor(opts.v4, hs.length);
      const v6 = planFor(opts.v6, hs.length);
      const ends: LinkEnd[] = [];
      for (const [i, h] of hs.entries()) {
        const iface = pickIface(h.name, seg);
        await veth(h.ns, iface, ns, `p${i}`, opts.mtu);
        await root.run(["ip", "-n", ns, "link", "set", `p${i}`, "master", "br0"]);
        ends.push({
          host: h.name,
          iface,
          v4: await addAddr(h.ns, iface, v4[i]),
          v6: await addAddr(h.ns, iface, v6[i]),
        });
      }
      return { name: seg, ns, ends };
    },

    async route(h, dst, via, opts = {}) {
      const fam = via.includes(":") ? "-6" : "-4";
      const dev = opts.dev ? ["dev", opts.dev] : [];
      await host(h).runner.run(["ip", fam, "route", "add", dst, "via", via, ...dev]);
    },

    async nat(h, outIface, opts = {}) {
      const q = JSON.stringify(outIface);
      const block = opts.blockInbound ?? true;
      const rules = [
        "table ip r6lab_nat {",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        `    oifname ${q} masquerade`,
        "  }",
        ...(block
          ? [
            "  chain forward {",
            "    type filter hook forward priority filter; policy accept;",
            `    iifname ${q} ct state established,related accept`,
            `    iifname ${q} drop`,
            "  }",
          ]
          : []),
        "}",
        "",
      ].join("\n");
      await host(h).runner.run(["nft", "-f", "-"], { stdin: rules });
    },

    async exec(h, argv, opts = {}) {
      const r = await host(h).runner.run(argv, { ok: "any", ...opts });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },

    spawn(h, argv, opts = {}) {
      const { log, ...rest } = opts;
      const so: SpawnOptions = log
        ? { ...rest, stdout: { append: log }, stderr: { append: log } }
        : rest;
      const c = host(h).runner.spawn(argv, so);
      children.add(c);
      c.status.then(() => children.delete(c));
      return c;
    },

    async ping(from, to, opts = {}) {
      const count = opts.count ?? 1;
      const r = await lab.exec(from, [
        "ping",
        "-n",
        "-q",
        "-c",
        String(count),
        "-i",
        "0.2",
        "-W",
        String(opts.timeoutS ?? 2),
        to,
      ]);
      if (r.code !== 0 && r.code !== 1) {
        throw new Error(`ping from ${from} to ${to} could not run (exit ${r.code}): ${r.stderr}`);
      }
      return r.code === 0;
    },

    waitFor: (fn, opts) => waitFor(fn, opts),

    async linkDown(h, iface) {
      await host(h).runner.run(["ip", "link", "set", iface, "down"]);
    },

    async linkUp(h, iface) {
      await host(h).runner.run(["ip", "link", "set", iface, "up"]);
    },

    async cleanup() {
      if (cleaned) return;
      await Promise.allSettled([...children].map((c) => c.stop(2000)));
      self.cleanupSync();
    },
  };
  return lab;
}

export type { Child, ChildStatus };
