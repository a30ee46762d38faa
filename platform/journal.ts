/**
 * The journal shared by every {@link Platform}: it turns {@link KernelOps} into a platform
 * that remembers what it added, converges to a desired state, and undoes exactly its own
 * changes in reverse order (STYLE.md 6). With a {@link JournalStore} the journal is also
 * written out before every change, so that the run after a kill -9 undoes exactly the
 * changes of the killed run and nothing else.
 */
import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { addressKey, routeKey } from "./cidr.ts";
import type {
  AddressSpec,
  Change,
  JournalStore,
  KernelOps,
  Leftovers,
  Platform,
  RouteSpec,
} from "./types.ts";

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

/** One line naming a change, for logs. */
export function describe(c: Change): string {
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
  /** Changes about to be made: stored with the journal until known made or not. */
  const intents = new Map<number, Change>();
  let nextIntent = 0;
  let store: JournalStore | null = null;
  let saving: Promise<void> = Promise.resolve();
  /** Writes journal and intents out, after any write in progress; never throws. */
  const save = (): Promise<void> => {
    if (!store) return Promise.resolve();
    const target = store;
    const snapshot = [...journal, ...intents.values()];
    saving = saving.then(() => target.save(snapshot)).catch((e) =>
      log?.warn(`Cannot save the journal of kernel changes: ${describeError(e)}`)
    );
    return saving;
  };
  const has = (key: string) => journal.some((c) => changeKey(c) === key);
  const forget = (key: string) => {
    const i = journal.findIndex((c) => changeKey(c) === key);
    if (i >= 0) journal.splice(i, 1);
    return i >= 0;
  };
  const record = (c: Change) => {
    forget(changeKey(c));
    journal.push(c);
    log?.debug(`added ${describe(c)}; it will be removed at exit`);
  };
  /** Makes `change` (write-ahead when stored); journals it when `make` says it did. */
  const make = async (c: Change, makeIt: () => Promise<boolean>): Promise<boolean> => {
    const id = nextIntent++;
    intents.set(id, c);
    let made = false;
    try {
      if (store) await save();
      made = await makeIt();
    } finally {
      intents.delete(id);
      if (made) record(c);
      if (store) await save();
    }
    return made;
  };
  /** Removes an object; forgets it from the journal (and the store) once removed. */
  const unmake = async (key: string, removeIt: () => Promise<boolean>): Promise<boolean> => {
    const removed = await removeIt();
    if (forget(key) && store) await save();
    return removed;
  };

  const addAddress = (a: AddressSpec) =>
    make({ kind: "address", spec: a }, () => ops.addAddress(a));
  const removeAddress = (a: AddressSpec) =>
    unmake(`address ${addressKey(a)}`, () => ops.removeAddress(a));
  const addRoute = (r: RouteSpec) => make({ kind: "route", spec: r }, () => ops.addRoute(r));
  const removeRoute = (r: RouteSpec) => unmake(`route ${routeKey(r)}`, () => ops.removeRoute(r));
  const createTap = (name: string) => make({ kind: "tap", name }, () => ops.createTap(name));
  const deleteTap = (name: string) => unmake(`tap ${name}`, () => ops.deleteTap(name));

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
      // Keep the oldest previous value when the same key is set twice.
      const earlier = journal.find((c) => c.kind === "sysctl" && c.key === key);
      const first = earlier?.kind === "sysctl" ? earlier.previous : previous;
      await make({ kind: "sysctl", key, value, previous: first }, async () => {
        await ops.putSysctl(key, value);
        return true;
      });
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

    async persistJournal(s) {
      store = s;
      await save();
    },

    async undoPrevious(previous) {
      const kept: Change[] = [];
      for (const c of [...previous].reverse()) {
        try {
          await undo(c);
          log?.debug(`removed ${describe(c)} (left by a previous run)`);
        } catch (e) {
          kept.unshift(c);
          log?.warn(
            `could not remove ${describe(c)} left by a previous run: ${describeError(e)}; ` +
              "will retry at exit",
          );
        }
      }
      // Kept oldest first, before this run's changes: undone last.
      journal.unshift(...kept);
      if (kept.length && store) await save();
      return kept.length;
    },

    async undoAll() {
      const errors: unknown[] = [];
      for (const c of [...journal].reverse()) {
        try {
          await undo(c);
          journal.splice(journal.indexOf(c), 1);
          log?.debug(`removed ${describe(c)}`);
        } catch (e) {
          errors.push(e);
          log?.warn(
            `could not remove ${describe(c)}: ${describeError(e)}; will retry on the next undo`,
          );
        }
      }
      await save();
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
