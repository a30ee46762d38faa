/**
 * The Linux kernel of a node: {@link KernelOps} over iproute2 (`ip`) and `nft`, run through a
 * {@link Runner} (bind the runner to a namespace to work inside one), journaled into the
 * {@link Kernel} of core/kernel.ts.
 *
 * Tap devices are made with `ip tuntap add dev <name> mode tap` and removed with
 * `ip link del dev <name>`, not with `openvpn --mktun/--rmtun` as the reference does
 * (PROTOCOL.md §8.2). The kernel object is the same (a persistent tap without packet info,
 * which OpenVPN attaches to with `--dev <name> --dev-type tap`), but every kernel change then
 * goes through one tool with one set of error messages, `ip link del` tells when the device
 * was already gone (which keeps removal idempotent and honest), and the platform does not
 * depend on OpenVPN.
 */
import { prefixContains, routeFamily } from "../core/cidr.ts";
import type { Logger } from "../core/log.ts";
import { machineAddresses } from "../core/node/addresses.ts";
import { fileJournal, journaled, type JournaledKernel } from "./journal.ts";
import type { AddressSpec, KernelOps, RouteSpec, RouteType } from "./kernel_ops.ts";
import { drainArgs, drainRuleset, dropTableArgs, undrainArgs } from "./nft_drain.ts";
import { CommandError, type Runner } from "./runner.ts";

/** The route added then deleted to probe for IPv6 subtrees (§7.1 step 4). */
export const SOURCE_ROUTING_PROBE: RouteSpec = {
  type: "unreachable",
  dst: "::/128",
  from: "::/128",
};

/** The useless link-local route on `lo` a node deletes (§7.1 step 10). */
export const LOOPBACK_LINK_LOCAL_ROUTE: RouteSpec = { dst: "fe80::/64", dev: "lo" };

function fam(address: string): string {
  return address.includes(":") ? "-6" : "-4";
}

/** argv of `ip addr add|del`. */
export function addressArgv(op: "add" | "del", a: AddressSpec): string[] {
  return ["ip", fam(a.address), "addr", op, a.address, "dev", a.dev];
}

/** argv of `ip route add|del` (type, destination, then selectors, in iproute2 order). */
export function routeArgv(op: "add" | "del", r: RouteSpec): string[] {
  const argv = ["ip", routeFamily(r) === 6 ? "-6" : "-4", "route", op];
  if (r.type && r.type !== "unicast") argv.push(r.type);
  argv.push(r.dst);
  if (r.from) argv.push("from", r.from);
  if (r.via) argv.push("via", r.via);
  if (r.dev) argv.push("dev", r.dev);
  if (r.proto) argv.push("proto", r.proto);
  if (r.table !== undefined) argv.push("table", String(r.table));
  if (r.metric !== undefined) argv.push("metric", String(r.metric));
  return argv;
}

/** argv creating (`ip tuntap add`) or deleting (`ip link del`) a tap device. */
export function tapArgv(op: "add" | "del", name: string): string[] {
  return op === "add"
    ? ["ip", "tuntap", "add", "dev", name, "mode", "tap"]
    : ["ip", "link", "del", "dev", name];
}

const EXISTS = /File exists|already assigned|Device or resource busy/;
const MISSING =
  /No such process|address not found|Cannot assign requested address|Cannot find device|No such device/i;

interface JsonRoute {
  type?: string;
  dst: string;
  from?: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  table?: string;
  metric?: number;
}
interface JsonLink {
  ifname: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string } };
}
/** nft's answer when a table or an element is not there. */
const NFT_MISSING = /No such file or directory/;

function parseJson<T>(text: string): T[] {
  const t = text.trim();
  return t ? JSON.parse(t) as T[] : [];
}

const ROUTE_TYPES: readonly string[] = ["unreachable", "blackhole", "prohibit", "throw"];
const SKIP_ROUTE_TYPES: readonly string[] = [
  "local",
  "broadcast",
  "multicast",
  "anycast",
  "nat",
];

/** Turns a route from `ip -j route show` into the spec that deletes it. */
export function routeFromJson(j: JsonRoute, family: 4 | 6): RouteSpec | null {
  if (j.type && SKIP_ROUTE_TYPES.includes(j.type)) return null;
  const r: RouteSpec = { dst: j.dst, family };
  if (j.type && ROUTE_TYPES.includes(j.type)) r.type = j.type as RouteType;
  if (j.from) r.from = j.from;
  if (j.gateway) r.via = j.gateway;
  // The kernel shows special routes on lo; they are not created (nor deleted) with a device.
  if (j.dev && !r.type) r.dev = j.dev;
  if (j.protocol) r.proto = j.protocol;
  if (j.table && j.table !== "main") r.table = j.table;
  if (j.metric !== undefined) r.metric = j.metric;
  return r;
}

/** Kernel primitives over iproute2 and nft, run through `runner`. */
export function linuxKernelOps(runner: Runner): KernelOps {
  /** Runs argv; true on success, false when stderr matches `tolerated`, else throws. */
  const attempt = async (argv: string[], tolerated: RegExp): Promise<boolean> => {
    const r = await runner.run(argv, { ok: "any" });
    if (r.code === 0) return true;
    if (tolerated.test(r.stderr)) return false;
    throw new CommandError(r.argv, r.code, r.stderr, r.stdout);
  };
  const json = async <T>(argv: string[]): Promise<T[]> =>
    parseJson<T>((await runner.run(argv)).stdout);

  const isTap = async (name: string): Promise<boolean> => {
    const r = await runner.run(["ip", "-j", "-d", "link", "show", "dev", name], { ok: "any" });
    if (r.code !== 0) return false;
    const l = parseJson<JsonLink>(r.stdout)[0];
    return l?.linkinfo?.info_kind === "tun" && l.linkinfo.info_data?.type === "tap";
  };
  /** The drain table is made once per life of these ops (a start clears any old one). */
  let drainTable = false;

  return {
    addAddress: (a) => attempt(addressArgv("add", a), EXISTS),
    removeAddress: (a) => attempt(addressArgv("del", a), MISSING),
    addRoute: (r) => attempt(routeArgv("add", r), EXISTS),
    removeRoute: (r) => attempt(routeArgv("del", r), MISSING),

    async createTap(name) {
      const r = await runner.run(tapArgv("add", name), { ok: "any" });
      if (r.code === 0) return true;
      if (EXISTS.test(r.stderr) && await isTap(name)) return false;
      throw new CommandError(r.argv, r.code, r.stderr, r.stdout);
    },
    deleteTap: (name) => attempt(tapArgv("del", name), MISSING),

    async drain(tap) {
      if (!drainTable) {
        await runner.run(["nft", ...dropTableArgs()], { ok: "any" });
        await runner.run(["nft", "-f", "-"], { stdin: drainRuleset() });
        drainTable = true;
      }
      await runner.run(["nft", ...drainArgs(tap)]);
      return true;
    },
    undrain: (tap) => attempt(["nft", ...undrainArgs(tap)], NFT_MISSING),
    async dropDrainTable() {
      drainTable = false;
      try {
        return await attempt(["nft", ...dropTableArgs()], NFT_MISSING);
      } catch (e) {
        // Without nft there is no table; draining then fails, and tunnels close undrained.
        if (e instanceof CommandError && e.code < 0) return false;
        throw e;
      }
    },

    removeLoopbackLinkLocalRoute: () =>
      attempt(routeArgv("del", LOOPBACK_LINK_LOCAL_ROUTE), MISSING),

    async hasSourceRouting() {
      const added = await runner.run(routeArgv("add", SOURCE_ROUTING_PROBE), { ok: "any" });
      // "File exists": a probe left by a crash; the kernel evidently supports it.
      if (added.code !== 0 && !/File exists/.test(added.stderr)) return false;
      await runner.run(routeArgv("del", SOURCE_ROUTING_PROBE), { ok: "any" });
      return true;
    },

    async listRoutes(networks) {
      const inside = (p: string | undefined) =>
        p !== undefined && networks.some((n) => prefixContains(n, p));
      const routes: RouteSpec[] = [];
      for (const family of [6, 4] as const) {
        const argv = ["ip", "-j", `-${family}`, "route", "show", "table", "all"];
        for (const j of await json<JsonRoute>(argv)) {
          if (j.table === "local" || j.protocol === "kernel") continue;
          if (!inside(j.dst === "default" ? undefined : j.dst) && !inside(j.from)) continue;
          const r = routeFromJson(j, family);
          if (r) routes.push(r);
        }
      }
      return routes;
    },

    async localAddresses() {
      return machineAddresses((await runner.run(["ip", "-j", "addr", "show"])).stdout);
    },
  };
}

/**
 * The Linux {@link Kernel} of a node: iproute2 and nft through `runner`, journaled into
 * `journal` (the run folder's file) when given.
 */
export function createLinuxKernel(
  runner: Runner,
  opts: { log?: Logger; journal?: string } = {},
): JournaledKernel {
  return journaled(linuxKernelOps(runner), {
    log: opts.log,
    store: opts.journal === undefined ? undefined : fileJournal(opts.journal),
  });
}
