/**
 * The {@link Kernel} of core/kernel.ts over {@link KernelOps}: converges to the desired state
 * a node gives it, remembers what it made, and removes exactly that (STYLE.md 6). With a
 * {@link JournalStore}, each change is written out before it is made, so that the run after a
 * kill -9 removes exactly the changes of the killed run (clearLeftovers), and nothing that an
 * operator made.
 */
import { addressKey, routeKey } from "../core/cidr.ts";
import { describeError } from "../core/errors.ts";
import type { Kernel, KernelState, LeftoverScope } from "../core/kernel.ts";
import type { Logger } from "../core/log.ts";
import type { Change, JournalStore, KernelOps } from "./kernel_ops.ts";

/** Identity of a change: two changes with the same key make the same kernel object. */
export function changeKey(c: Change): string {
  switch (c.kind) {
    case "address":
      return `address ${addressKey(c.spec)}`;
    case "route":
      return `route ${routeKey(c.spec)}`;
    case "tap":
      return `tap ${c.name}`;
    case "drain":
      return `drain ${c.tap}`;
  }
}

/** One line naming a change, for logs. */
export function describe(c: Change): string {
  switch (c.kind) {
    case "address":
      return `address ${c.spec.address} on ${c.spec.dev}`;
    case "route": {
      const r = c.spec;
      const parts = [r.type && r.type !== "unicast" ? r.type : "", r.dst];
      if (r.from) parts.push(`from ${r.from}`);
      if (r.via) parts.push(`via ${r.via}`);
      if (r.dev) parts.push(`dev ${r.dev}`);
      if (r.proto) parts.push(`proto ${r.proto}`);
      if (r.table !== undefined) parts.push(`table ${r.table}`);
      return `route ${parts.filter((p) => p).join(" ")}`;
    }
    case "tap":
      return `tap ${c.name}`;
    case "drain":
      return `Babel drop rule on ${c.tap}`;
  }
}

/** The changes of a stored journal; anything that is not a change is skipped. */
export function parseJournal(text: string): Change[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(data)) return [];
  const str = (v: unknown) => typeof v === "string" && v !== "";
  return data.filter((c): c is Change => {
    if (typeof c !== "object" || c === null) return false;
    switch (c.kind) {
      case "address":
        return str(c.spec?.address) && str(c.spec?.dev);
      case "route":
        return str(c.spec?.dst);
      case "tap":
        return str(c.name);
      case "drain":
        return str(c.tap);
      default:
        return false;
    }
  });
}

/** The journal as a JSON file, written to `<path>.tmp` (mode 0600) then renamed over it. */
export function fileJournal(path: string): JournalStore {
  return {
    async save(changes) {
      await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(changes) + "\n", { mode: 0o600 });
      await Deno.rename(`${path}.tmp`, path);
    },
    async load() {
      try {
        return parseJournal(await Deno.readTextFile(path));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return [];
        throw e;
      }
    },
  };
}

/** A {@link Kernel} that also lists its journal (tests compare it). */
export interface JournaledKernel extends Kernel {
  /** Changes made and not yet undone, oldest first. */
  changes(): readonly Change[];
}

/** Wraps kernel primitives into a journaled {@link Kernel}. */
export function journaled(
  ops: KernelOps,
  opts: { log?: Logger; store?: JournalStore } = {},
): JournaledKernel {
  const { log, store } = opts;
  const journal: Change[] = [];
  /** Objects that were there before we wanted them: their owner's, never removed by us. */
  const foreign = new Set<string>();
  /** Changes about to be made: stored with the journal until known made or not. */
  const intents = new Map<number, Change>();
  let nextIntent = 0;
  let saving: Promise<void> = Promise.resolve();
  /** One apply or clean-up at a time. */
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => {});
    return run;
  };

  /** Writes journal and intents out, after any write in progress; never throws. */
  const save = (): Promise<void> => {
    if (!store) return Promise.resolve();
    const snapshot = [...journal, ...intents.values()];
    saving = saving.then(() => store.save(snapshot)).catch((e) =>
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

  const makeOp = (c: Change): Promise<boolean> => {
    switch (c.kind) {
      case "address":
        return ops.addAddress(c.spec);
      case "route":
        return ops.addRoute(c.spec);
      case "tap":
        return ops.createTap(c.name);
      case "drain":
        return ops.drain(c.tap);
    }
  };
  const undoOp = (c: Change): Promise<boolean> => {
    switch (c.kind) {
      case "address":
        return ops.removeAddress(c.spec);
      case "route":
        return ops.removeRoute(c.spec);
      case "tap":
        return ops.deleteTap(c.name);
      case "drain":
        return ops.undrain(c.tap);
    }
  };

  /** Makes a change, stored before it is made; journals it when it was made by us. */
  const make = async (c: Change): Promise<void> => {
    const id = nextIntent++;
    intents.set(id, c);
    let made: boolean | null = null;
    try {
      await save();
      made = await makeOp(c);
    } finally {
      intents.delete(id);
      if (made) {
        journal.push(c);
        log?.debug(`added ${describe(c)}; it will be removed at exit`);
      } else if (made === false) foreign.add(changeKey(c));
      await save();
    }
  };
  /** Undoes a change of ours; forgets it (and stores that) once gone. */
  const unmake = async (c: Change): Promise<void> => {
    await undoOp(c);
    forget(changeKey(c));
    log?.debug(`removed ${describe(c)}`);
    await save();
  };

  const wanted = (want: KernelState): Map<string, Change> => {
    const m = new Map<string, Change>();
    const add = (c: Change) => m.set(changeKey(c), c);
    for (const name of want.taps) add({ kind: "tap", name });
    for (const spec of want.addresses) add({ kind: "address", spec });
    for (const spec of want.routes) add({ kind: "route", spec });
    for (const tap of want.drained) add({ kind: "drain", tap });
    return m;
  };

  return {
    apply: (want) =>
      serial(async () => {
        const wants = wanted(want);
        const errors: unknown[] = [];
        const attempt = async (what: string, fn: () => Promise<void>) => {
          try {
            await fn();
          } catch (e) {
            errors.push(e);
            log?.warn(`Cannot ${what}: ${describeError(e)}`);
          }
        };
        for (const c of [...journal].reverse()) {
          if (!wants.has(changeKey(c))) await attempt(`remove ${describe(c)}`, () => unmake(c));
        }
        for (const key of [...foreign]) if (!wants.has(key)) foreign.delete(key);
        for (const [key, c] of wants) {
          if (!has(key) && !foreign.has(key)) await attempt(`add ${describe(c)}`, () => make(c));
        }
        if (errors.length === 1) throw errors[0];
        if (errors.length) {
          throw new AggregateError(errors, `${errors.length} kernel changes failed`);
        }
      }),

    clearLeftovers: (scope: LeftoverScope) =>
      serial(async () => {
        const removed: string[] = [];
        const found = store ? await store.load() : [];
        const ours = new Set(journal.map(changeKey));
        for (const c of found.reverse()) {
          if (ours.has(changeKey(c))) continue; // ours now: apply() removes it when unwanted
          try {
            if (await undoOp(c)) removed.push(describe(c));
          } catch (e) {
            // Kept: removed when this run applies a state without it (at the latest, at exit).
            journal.unshift(c);
            log?.warn(`Cannot remove ${describe(c)} left by a previous run: ${describeError(e)}`);
          }
        }
        for (const r of await ops.listRoutes(scope.networks)) {
          if (r.proto !== "babel") continue;
          const c: Change = { kind: "route", spec: r };
          try {
            if (await ops.removeRoute(r)) removed.push(describe(c));
          } catch (e) {
            log?.warn(`Cannot remove ${describe(c)} left by babeld: ${describeError(e)}`);
          }
        }
        if (await ops.dropDrainTable()) removed.push("the nftables drain table");
        await save();
        return removed;
      }),

    owned: () => journal.map(describe),
    changes: () => [...journal],
    hasSourceRouting: () => ops.hasSourceRouting(),
    removeLoopbackLinkLocalRoute: () => ops.removeLoopbackLinkLocalRoute(),
    localAddresses: () => ops.localAddresses(),
  };
}
