/**
 * The Linux platform: {@link KernelOps} over iproute2 (`ip`) and `sysctl`, run through a
 * {@link Runner} (bind the runner to a namespace to work inside one).
 *
 * Tap devices are made with `ip tuntap add dev <name> mode tap` and removed with
 * `ip link del dev <name>`, not with `openvpn --mktun/--rmtun` as the reference does
 * (PROTOCOL.md §8.2). The kernel object is the same (a persistent tap without packet info,
 * which OpenVPN attaches to with `--dev <name> --dev-type tap`), but every kernel change then
 * goes through one tool with one set of error messages, `ip link del` tells when the device
 * was already gone (which keeps removal idempotent and honest), and the platform does not
 * depend on OpenVPN.
 */
import { TAP_PREFIX } from "../core/constants.ts";
import type { Logger } from "../core/log.ts";
import { prefixContains, routeFamily } from "./cidr.ts";
import { journaled } from "./journal.ts";
import { CommandError, type Runner } from "./runner.ts";
import type {
  AddressSpec,
  KernelOps,
  LeftoverQuery,
  Leftovers,
  LinkSettings,
  Platform,
  RouteSpec,
  RouteType,
} from "./types.ts";

/** The route added then deleted to probe for IPv6 subtrees (§7.1 step 4). */
export const SOURCE_ROUTING_PROBE: RouteSpec = {
  type: "unreachable",
  dst: "::/128",
  from: "::/128",
};

/** The useless link-local route on `lo` a node deletes (§7.1 step 10). */
export const LOOPBACK_LINK_LOCAL_ROUTE: RouteSpec = { dst: "fe80::/64", dev: "lo" };

/** Default name prefix of re6st tap devices. */

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

/** argv of `ip link set dev <name> [up|down] [mtu N]`. */
export function linkArgv(name: string, s: LinkSettings): string[] {
  const argv = ["ip", "link", "set", "dev", name];
  if (s.up !== undefined) argv.push(s.up ? "up" : "down");
  if (s.mtu !== undefined) argv.push("mtu", String(s.mtu));
  return argv;
}

/** argv reading (`value` undefined) or writing a sysctl. */
export function sysctlArgv(key: string, value?: string): string[] {
  return value === undefined ? ["sysctl", "-n", key] : ["sysctl", "-q", "-w", `${key}=${value}`];
}

const EXISTS = /File exists|already assigned|Device or resource busy/;
const MISSING =
  /No such process|address not found|Cannot assign requested address|Cannot find device|No such device/i;

interface JsonAddr {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
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

/** Kernel primitives over iproute2, run through `runner`. */
export function linuxKernel(runner: Runner): KernelOps {
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

    async setLink(name, s) {
      if (s.up === undefined && s.mtu === undefined) return;
      await runner.run(linkArgv(name, s));
    },

    removeLoopbackLinkLocalRoute: () =>
      attempt(routeArgv("del", LOOPBACK_LINK_LOCAL_ROUTE), MISSING),

    async getSysctl(key) {
      return (await runner.run(sysctlArgv(key))).stdout.trim();
    },
    async putSysctl(key, value) {
      await runner.run(sysctlArgv(key, value));
    },

    async hasSourceRouting() {
      const added = await runner.run(routeArgv("add", SOURCE_ROUTING_PROBE), { ok: "any" });
      // "File exists": a probe left by a crash; the kernel evidently supports it.
      if (added.code !== 0 && !/File exists/.test(added.stderr)) return false;
      await runner.run(routeArgv("del", SOURCE_ROUTING_PROBE), { ok: "any" });
      return true;
    },

    async listLeftovers(q: LeftoverQuery): Promise<Leftovers> {
      const inside = (p: string | undefined) =>
        p !== undefined && q.networks.some((n) => prefixContains(n, p));
      const addresses: AddressSpec[] = [];
      for (const l of await json<JsonAddr>(["ip", "-j", "addr", "show"])) {
        for (const a of l.addr_info ?? []) {
          if (inside(a.local)) {
            addresses.push({ address: `${a.local}/${a.prefixlen}`, dev: l.ifname });
          }
        }
      }
      const routes: RouteSpec[] = [];
      for (const family of [6, 4] as const) {
        const list = await json<JsonRoute>([
          "ip",
          "-j",
          `-${family}`,
          "route",
          "show",
          "table",
          "all",
        ]);
        for (const j of list) {
          if (j.table === "local" || j.protocol === "kernel") continue;
          if (!inside(j.dst === "default" ? undefined : j.dst) && !inside(j.from)) continue;
          const r = routeFromJson(j, family);
          if (r) routes.push(r);
        }
      }
      const prefix = q.tapPrefix ?? TAP_PREFIX;
      const taps = (await json<JsonLink>(["ip", "-j", "-d", "link", "show"]))
        .filter((l) => l.ifname.startsWith(prefix) && l.linkinfo?.info_kind === "tun")
        .map((l) => l.ifname);
      return { addresses, routes, taps };
    },
  };
}

/** The Linux {@link Platform}: iproute2 through `runner`, with the undo journal. */
export function createLinuxPlatform(runner: Runner, opts: { log?: Logger } = {}): Platform {
  return journaled(linuxKernel(runner), opts);
}
