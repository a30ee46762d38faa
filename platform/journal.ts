/**
 * The journal shared by every {@link Platform}: it turns {@link KernelOps} into a platform
 * that remembers what it added, converges to a desired state, and undoes exactly its own
 * changes in reverse order (STYLE.md 6).
 */
import type { Logger } from "../core/log.ts";
import { addressKey, routeKey } from "./cidr.ts";
import type { AddressSpec, Change, KernelOps, Leftovers, Platform, RouteSpec } from "./types.ts";

function changeKey(c: Change): string {
  switch (c.kind) {
    case "address":
      return `address ${addressKey(c.spec)}`;
    case "route":
      return `route ${routeKey(c.spec)}`;
    case "tap":
      return `tap ${c.name}`;
    case "sysctl":
      return `sysctl ${c.key}`;
  }
}

function describe(c: Change): string {
  switch (c.kind) {
    case "address":
      return `address ${c.spec.address} on ${c.spec.dev}`;
    case "route": {
      const r = c.spec;
      const parts = [r.type === "unreachable" ? "unreachable" : "", r.dst];
      if (r.from) parts.push(`from ${r.from}`);
      if (r.via) parts.push(`via ${r.via}`);
      if (r.dev) parts.push(`dev ${r.dev}`);
      if (r.table !== undefined) parts.push(`table ${r.table}`);
      return `route ${parts.filter((p) => p).join(" ")}`;
    }
    case "tap":
      return `tap device ${c.name}`;
    case "sysctl":
      return `sysctl ${c.key}=${c.value} (was ${c.previous})`;
  }
}

/** Wraps kernel primitives into a journaling {@link Platform}. */
export function journaled(ops: KernelOps, opts: { log?: Logger } = {}): Platform {
  const log = opts.log;
  const journal: Change[] = [];
  const has = (key: string) => journal.some((c) => changeKey(c) === key);
  const forget = (key: string) => {
    const i = journal.findIndex((c) => changeKey(c) === key);
    if (i >= 0) journal.splice(i, 1);
  };
  const record = (c: Change) => {
    forget(changeKey(c));
    journal.push(c);
    log?.debug(`added ${describe(c)}; it will be removed at exit`);
  };

  const addAddress = async (a: AddressSpec) => {
    const added = await ops.addAddress(a);
    if (added) record({ kind: "address", spec: a });
    return added;
  };
  const removeAddress = async (a: AddressSpec) => {
    const removed = await ops.removeAddress(a);
    forget(`address ${addressKey(a)}`);
    return removed;
  };
  const addRoute = async (r: RouteSpec) => {
    const added = await ops.addRoute(r);
    if (added) record({ kind: "route", spec: r });
    return added;
  };
  const removeRoute = async (r: RouteSpec) => {
    const removed = await ops.removeRoute(r);
    forget(`route ${routeKey(r)}`);
    return removed;
  };
  const createTap = async (name: string) => {
    const added = await ops.createTap(name);
    if (added) record({ kind: "tap", name });
    return added;
  };
  const deleteTap = async (name: string) => {
    const removed = await ops.deleteTap(name);
    forget(`tap ${name}`);
    return removed;
  };

  const undo = async (c: Change) => {
    switch (c.kind) {
      case "address":
        await ops.removeAddress(c.spec);
        break;
      case "route":
        await ops.removeRoute(c.spec);
        break;
      case "tap":
        await ops.deleteTap(c.name);
        break;
      case "sysctl":
        await ops.putSysctl(c.key, c.previous);
        break;
    }
  };

  return {
    ...bindAll(ops),
    addAddress,
    removeAddress,
    addRoute,
    removeRoute,
    createTap,
    deleteTap,

    async setSysctl(key, value) {
      const previous = await ops.getSysctl(key);
      if (previous === value) return;
      await ops.putSysctl(key, value);
      // Keep the oldest previous value when the same key is set twice.
      const earlier = journal.find((c) => c.kind === "sysctl" && c.key === key);
      const first = earlier?.kind === "sysctl" ? earlier.previous : previous;
      record({ kind: "sysctl", key, value, previous: first });
    },

    async apply(want) {
      const taps = new Set(want.taps ?? []);
      const addrs = new Map((want.addresses ?? []).map((a) => [`address ${addressKey(a)}`, a]));
      const routes = new Map((want.routes ?? []).map((r) => [`route ${routeKey(r)}`, r]));
      // Remove what we added and no longer want, newest first.
      for (const c of [...journal].reverse()) {
        const key = changeKey(c);
        if (c.kind === "route" && !routes.has(key)) await removeRoute(c.spec);
        if (c.kind === "address" && !addrs.has(key)) await removeAddress(c.spec);
        if (c.kind === "tap" && !taps.has(c.name)) await deleteTap(c.name);
      }
      for (const t of taps) if (!has(`tap ${t}`)) await createTap(t);
      for (const [k, a] of addrs) if (!has(k)) await addAddress(a);
      for (const [k, r] of routes) if (!has(k)) await addRoute(r);
    },

    async removeLeftovers(l: Leftovers) {
      for (const r of l.routes) await ops.removeRoute(r);
      for (const a of l.addresses) await ops.removeAddress(a);
      for (const t of l.taps) await ops.deleteTap(t);
    },

    changes: () => [...journal],

    async undoAll() {
      const errors: unknown[] = [];
      for (const c of [...journal].reverse()) {
        try {
          await undo(c);
          journal.splice(journal.indexOf(c), 1);
          log?.debug(`removed ${describe(c)}`);
        } catch (e) {
          errors.push(e);
          log?.warn(`could not remove ${describe(c)}: ${e}; will retry on the next undo`);
        }
      }
      if (errors.length) {
        throw new AggregateError(errors, `Could not undo ${errors.length} platform change(s)`);
      }
    },
  };
}

/** Copies the methods of `ops` bound to it, so the platform can expose the read-only ones. */
function bindAll(ops: KernelOps): KernelOps {
  return {
    addAddress: ops.addAddress.bind(ops),
    removeAddress: ops.removeAddress.bind(ops),
    addRoute: ops.addRoute.bind(ops),
    removeRoute: ops.removeRoute.bind(ops),
    createTap: ops.createTap.bind(ops),
    deleteTap: ops.deleteTap.bind(ops),
    setLink: ops.setLink.bind(ops),
    removeLoopbackLinkLocalRoute: ops.removeLoopbackLinkLocalRoute.bind(ops),
    getSysctl: ops.getSysctl.bind(ops),
    putSysctl: ops.putSysctl.bind(ops),
    hasSourceRouting: ops.hasSourceRouting.bind(ops),
    listLeftovers: ops.listLeftovers.bind(ops),
  };
}
