/**
 * A fake {@link Platform} for unit tests (STYLE.md 7-8): it keeps a model of links, addresses,
 * routes and sysctls, behaves like the kernel for what a node does (duplicates, missing
 * objects, deleting a tap takes its addresses and routes), and records every change it was
 * asked to make as the `ip`/`sysctl` command line the Linux platform would run.
 */
import { TAP_PREFIX } from "../core/constants.ts";
import type { Logger } from "../core/log.ts";
import { addressKey, canonicalNetwork, prefixContains, routeFamily } from "./cidr.ts";
import { journaled } from "./journal.ts";
import {
  addressArgv,
  linkArgv,
  LOOPBACK_LINK_LOCAL_ROUTE,
  routeArgv,
  SOURCE_ROUTING_PROBE,
  sysctlArgv,
  tapArgv,
} from "./linux.ts";
import { CommandError } from "./runner.ts";
import type { AddressSpec, KernelOps, Platform, RouteSpec } from "./types.ts";

/** A link of the model. */
export interface ModelLink {
  kind: "tap" | "other";
  up: boolean;
  mtu: number;
}

/** What the fake kernel holds. */
export interface RecorderModel {
  links: Map<string, ModelLink>;
  addresses: AddressSpec[];
  routes: RouteSpec[];
  sysctls: Map<string, string>;
}

/** Options of {@link createRecorderPlatform}. */
export interface RecorderOptions {
  /** Existing non-tap links (default `["lo"]`, up). */
  links?: string[];
  /** Whether the fake kernel has IPv6 subtrees (default true). */
  sourceRouting?: boolean;
  /** Start with the `fe80::/64 dev lo` route present (default false). */
  loopbackLinkLocalRoute?: boolean;
  /** Initial sysctl values; unknown keys read as "0". */
  sysctls?: Record<string, string>;
  /** Makes the command `line` fail with exit code 2 and the returned stderr. */
  fail?: (line: string) => string | undefined;
  log?: Logger;
}

/** The fake platform with its model and the list of operations. */
export interface RecorderPlatform extends Platform {
  /** Every change asked for, as the command line the Linux platform would run, in order. */
  readonly ops: string[];
  readonly model: RecorderModel;
  /** The model as sorted text lines (addresses, routes, links, changed sysctls). */
  state(): string[];
}

/** Kernel identity of a route: what makes `ip route add` answer "File exists". */
function routeIdentity(r: RouteSpec): string {
  const f = routeFamily(r);
  const table = r.table === undefined || r.table === "main" ? "254" : String(r.table);
  return [
    f,
    canonicalNetwork(r.dst, f),
    r.from ? canonicalNetwork(r.from, f) : "",
    table,
    r.metric ?? "",
  ]
    .join("|");
}

/** True when deleting `sel` would delete `r` (given selectors must match). */
function routeMatches(sel: RouteSpec, r: RouteSpec): boolean {
  const f = routeFamily(sel);
  if (routeFamily(r) !== f || canonicalNetwork(sel.dst, f) !== canonicalNetwork(r.dst, f)) {
    return false;
  }
  const same = (a: unknown, b: unknown) => a === undefined || a === b;
  const norm = (p?: string) => p && canonicalNetwork(p, f);
  return norm(sel.from) === norm(r.from) &&
    (sel.type ?? "unicast") === (r.type ?? "unicast") &&
    same(sel.via, r.via) && same(sel.dev, r.dev) && same(sel.proto, r.proto) &&
    same(sel.metric, r.metric) &&
    String(sel.table ?? "main") === String(r.table ?? "main");
}

/** Creates the fake platform. */
export function createRecorderPlatform(opts: RecorderOptions = {}): RecorderPlatform {
  const model: RecorderModel = {
    links: new Map((opts.links ?? ["lo"]).map((l) => [l, { kind: "other", up: true, mtu: 65536 }])),
    addresses: [],
    routes: opts.loopbackLinkLocalRoute ? [{ ...LOOPBACK_LINK_LOCAL_ROUTE, proto: "kernel" }] : [],
    sysctls: new Map(Object.entries(opts.sysctls ?? {})),
  };
  const initialSysctls = new Map(model.sysctls);
  const ops: string[] = [];
  const sourceRouting = opts.sourceRouting ?? true;

  /** Records argv, applies failure injection. */
  const op = (argv: string[]) => {
    const line = argv.join(" ");
    ops.push(line);
    const stderr = opts.fail?.(line);
    if (stderr !== undefined) throw new CommandError(argv, 2, stderr);
  };
  const needLink = (argv: string[], dev: string | undefined) => {
    if (dev !== undefined && !model.links.has(dev)) {
      throw new CommandError(argv, 1, `Cannot find device "${dev}"`);
    }
  };

  const kernel: KernelOps = {
    addAddress(a) {
      const argv = addressArgv("add", a);
      op(argv);
      needLink(argv, a.dev);
      if (model.addresses.some((x) => addressKey(x) === addressKey(a))) {
        return Promise.resolve(false);
      }
      model.addresses.push({ ...a });
      return Promise.resolve(true);
    },
    removeAddress(a) {
      op(addressArgv("del", a));
      const i = model.addresses.findIndex((x) => addressKey(x) === addressKey(a));
      if (i < 0) return Promise.resolve(false);
      model.addresses.splice(i, 1);
      return Promise.resolve(true);
    },
    addRoute(r) {
      const argv = routeArgv("add", r);
      op(argv);
      needLink(argv, r.dev);
      if (r.from && routeFamily(r) === 6 && !sourceRouting) {
        throw new CommandError(argv, 2, "RTNETLINK answers: Operation not supported");
      }
      if (model.routes.some((x) => routeIdentity(x) === routeIdentity(r))) {
        return Promise.resolve(false);
      }
      model.routes.push({ ...r });
      return Promise.resolve(true);
    },
    removeRoute(r) {
      op(routeArgv("del", r));
      const i = model.routes.findIndex((x) => routeMatches(r, x));
      if (i < 0) return Promise.resolve(false);
      model.routes.splice(i, 1);
      return Promise.resolve(true);
    },
    createTap(name) {
      const argv = tapArgv("add", name);
      op(argv);
      const l = model.links.get(name);
      if (l?.kind === "tap") return Promise.resolve(false);
      if (l) throw new CommandError(argv, 1, "ioctl(TUNSETIFF): Device or resource busy");
      model.links.set(name, { kind: "tap", up: false, mtu: 1500 });
      return Promise.resolve(true);
    },
    deleteTap(name) {
      op(tapArgv("del", name));
      if (!model.links.delete(name)) return Promise.resolve(false);
      model.addresses = model.addresses.filter((a) => a.dev !== name);
      model.routes = model.routes.filter((r) => r.dev !== name);
      return Promise.resolve(true);
    },
    setLink(name, s) {
      if (s.up === undefined && s.mtu === undefined) return Promise.resolve();
      const argv = linkArgv(name, s);
      op(argv);
      needLink(argv, name);
      const l = model.links.get(name)!;
      if (s.up !== undefined) l.up = s.up;
      if (s.mtu !== undefined) l.mtu = s.mtu;
      return Promise.resolve();
    },
    removeLoopbackLinkLocalRoute() {
      return kernel.removeRoute(LOOPBACK_LINK_LOCAL_ROUTE);
    },
    getSysctl(key) {
      return Promise.resolve(model.sysctls.get(key) ?? "0");
    },
    putSysctl(key, value) {
      op(sysctlArgv(key, value));
      model.sysctls.set(key, value);
      return Promise.resolve();
    },
    hasSourceRouting() {
      op(routeArgv("add", SOURCE_ROUTING_PROBE));
      if (sourceRouting) op(routeArgv("del", SOURCE_ROUTING_PROBE));
      return Promise.resolve(sourceRouting);
    },
    listLeftovers(q) {
      const inside = (p: string | undefined) =>
        p !== undefined && q.networks.some((n) => prefixContains(n, p));
      const prefix = q.tapPrefix ?? TAP_PREFIX;
      return Promise.resolve({
        addresses: model.addresses.filter((a) => inside(a.address)).map((a) => ({ ...a })),
        routes: model.routes
          .filter((r) => r.proto !== "kernel")
          .filter((r) => inside(r.dst === "default" ? undefined : r.dst) || inside(r.from))
          .map((r) => ({ ...r })),
        taps: [...model.links].filter(([n, l]) => l.kind === "tap" && n.startsWith(prefix))
          .map(([n]) => n),
      });
    },
  };

  const platform = journaled(kernel, { log: opts.log });
  return {
    ...platform,
    ops,
    model,
    state() {
      const lines = [
        ...model.addresses.map((a) => `address ${a.address} dev ${a.dev}`),
        ...model.routes.map((r) => `route ${routeArgv("add", r).slice(4).join(" ")}`),
        ...[...model.links].map(([n, l]) =>
          `link ${n} ${l.kind} ${l.up ? "up" : "down"} mtu ${l.mtu}`
        ),
        ...[...model.sysctls].filter(([k, v]) => (initialSysctls.get(k) ?? "0") !== v)
          .map(([k, v]) => `sysctl ${k}=${v}`),
      ];
      return lines.sort();
    },
  };
}
