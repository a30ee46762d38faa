// The local copy of babeld's tables, kept current by applying object lines (§8.4.2).

import type {
  BabelEvent,
  BabelInterface,
  BabelNeighbour,
  BabelRoute,
  BabelXroute,
} from "./parse.ts";

/** Everything babeld reported at one moment: interfaces, neighbours, own and learned routes. */
export interface BabelSnapshot {
  interfaces: BabelInterface[];
  neighbours: BabelNeighbour[];
  /** Routes this babeld originates. */
  xroutes: BabelXroute[];
  /** Learned routes, installed or not (see `installed`). */
  routes: BabelRoute[];
}

/** Mutable tables keyed by {@link eventKey} of each object. */
export interface BabelView {
  interfaces: Map<string, BabelInterface>;
  neighbours: Map<string, BabelNeighbour>;
  xroutes: Map<string, BabelXroute>;
  routes: Map<string, BabelRoute>;
}

/** An empty view. */
export function emptyView(): BabelView {
  return { interfaces: new Map(), neighbours: new Map(), xroutes: new Map(), routes: new Map() };
}

/** Identity of the object an event is about, unique across object types. */
export function eventKey(e: BabelEvent): string {
  switch (e.type) {
    case "interface":
      return `interface ${e.value.name}`;
    case "neighbour":
      return `neighbour ${e.value.id}`;
    case "route":
      return `route ${e.value.id}`;
    case "xroute": {
      const x = e.value;
      return `xroute ${x.prefix}/${x.plen}-${x.from}/${x.fromPlen}`;
    }
  }
}

function table(view: BabelView, e: BabelEvent): Map<string, BabelEvent["value"]> {
  switch (e.type) {
    case "interface":
      return view.interfaces;
    case "neighbour":
      return view.neighbours;
    case "route":
      return view.routes;
    case "xroute":
      return view.xroutes;
  }
}

/** Applies one add/change/flush line to the view. */
export function applyEvent(view: BabelView, e: BabelEvent): void {
  const t = table(view, e);
  const key = eventKey(e);
  if (e.kind === "flush") t.delete(key);
  else t.set(key, e.value);
}

/** Removes every object whose key is not in `keep` (after a full dump, §8.4.3). */
export function pruneView(view: BabelView, keep: ReadonlySet<string>): void {
  for (const t of [view.interfaces, view.neighbours, view.routes, view.xroutes] as const) {
    for (const k of [...t.keys()]) if (!keep.has(k)) t.delete(k);
  }
}

/** A detached copy of the view. */
export function snapshotOf(view: BabelView): BabelSnapshot {
  return {
    interfaces: [...view.interfaces.values()].map((x) => ({ ...x })),
    neighbours: [...view.neighbours.values()].map((x) => ({ ...x })),
    xroutes: [...view.xroutes.values()].map((x) => ({ ...x })),
    routes: [...view.routes.values()].map((x) => ({ ...x })),
  };
}
