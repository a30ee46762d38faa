/**
 * A fake {@link Kernel} for unit tests (STYLE.md 7-8): it keeps a model of links, addresses,
 * routes and drained taps, behaves like the kernel for what a node does (duplicates, missing
 * objects, deleting a tap takes its addresses and routes), and records every change it was
 * asked to make as the `ip`/`nft` command line the Linux kernel ops would run.
 */
import { addressKey, canonicalNetwork, prefixContains, routeFamily } from "../core/cidr.ts";
import type { Logger } from "../core/log.ts";
import { journaled, type JournaledKernel } from "./journal.ts";
import type { AddressSpec, JournalStore, KernelOps, RouteSpec } from "./kernel_ops.ts";
import {
  addressArgv,
  LOOPBACK_LINK_LOCAL_ROUTE,
  routeArgv,
  SOURCE_ROUTING_PROBE,
  tapArgv,
} from "./linux.ts";
import { drainArgs, dropTableArgs, undrainArgs } from "./nft_drain.ts";
import { CommandError } from "./runner.ts";

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
  /** Taps whose Babel packets are dropped; null while there is no drain table. */
  drained: Set<string> | null;
}

/** Options of {@link createRecorderKernel}. */
export interface RecorderOptions {
  /** Existing non-tap links (default `["lo"]`, up). */
  links?: string[];
  /** Whether the fake kernel has IPv6 subtrees (default true). */
  sourceRouting?: boolean;
  /** Start with the `fe80::/64 dev lo` route present (default false). */
  loopbackLinkLocalRoute?: boolean;
  /** Global addresses of the machine outside re6st (localAddresses). */
  localAddresses?: string[];
  /** Where the journal is kept (default: nowhere). */
  store?: JournalStore;
  /** The machine, shared with another recorder (a node started again on the same host). */
  model?: RecorderModel;
  /** Makes the command `line` fail with exit code 2 and the returned stderr. */
  fail?: (line: string) => string | undefined;
  log?: Logger;
}

/** The fake kernel with its model and the list of operations. */
export interface RecorderKernel extends JournaledKernel {
  /** Every change asked for, as the command line the Linux platform would run, in order. */
  readonly ops: string[];
  readonly model: RecorderModel;
  /** The model as sorted text lines (addresses, routes, links, drained taps). */
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

/** Creates the fake kernel. */
export function createRecorderKernel(opts: RecorderOptions = {}): RecorderKernel {
  const model: RecorderModel = opts.model ?? {
    links: new Map((opts.links ?? ["lo"]).map((l) => [l, { kind: "other", up: true, mtu: 65536 }])),
    addresses: [],
    routes: opts.loopbackLinkLocalRoute ? [{ ...LOOPBACK_LINK_LOCAL_ROUTE, proto: "kernel" }] : [],
    drained: null,
  };
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
    drain(tap) {
      op(["nft", ...drainArgs(tap)]);
      (model.drained ??= new Set()).add(tap);
      return Promise.resolve(true);
    },
    undrain(tap) {
      op(["nft", ...undrainArgs(tap)]);
      return Promise.resolve(model.drained?.delete(tap) ?? false);
    },
    dropDrainTable() {
      op(["nft", ...dropTableArgs()]);
      const had = model.drained !== null;
      model.drained = null;
      return Promise.resolve(had);
    },
    removeLoopbackLinkLocalRoute() {
      return kernel.removeRoute(LOOPBACK_LINK_LOCAL_ROUTE);
    },
    hasSourceRouting() {
      op(routeArgv("add", SOURCE_ROUTING_PROBE));
      if (sourceRouting) op(routeArgv("del", SOURCE_ROUTING_PROBE));
      return Promise.resolve(sourceRouting);
    },
    listRoutes(networks) {
      const inside = (p: string | undefined) =>
        p !== undefined && networks.some((n) => prefixContains(n, p));
      return Promise.resolve(
        model.routes
          .filter((r) => r.proto !== "kernel")
          .filter((r) => inside(r.dst === "default" ? undefined : r.dst) || inside(r.from))
          .map((r) => ({ ...r })),
      );
    },
    localAddresses: () => Promise.resolve([...opts.localAddresses ?? []]),
  };

  return {
    ...journaled(kernel, { log: opts.log, store: opts.store }),
    ops,
    model,
    state() {
      const lines = [
        ...model.addresses.map((a) => `address ${a.address} dev ${a.dev}`),
        ...model.routes.map((r) => `route ${routeArgv("add", r).slice(4).join(" ")}`),
        ...[...model.links].map(([n, l]) =>
          `link ${n} ${l.kind} ${l.up ? "up" : "down"} mtu ${l.mtu}`
        ),
        ...[...model.drained ?? []].map((t) => `drained ${t}`),
      ];
      return lines.sort();
    },
  };
}
