/**
 * Kernel primitives under the journaled {@link Kernel} of core/kernel.ts: platform/linux.ts
 * implements them with `ip` and `nft`, platform/recorder.ts with a model for unit tests.
 */
import type { AddressSpec, RouteSpec } from "../core/kernel.ts";

export type { AddressSpec, Family, Kernel, RouteSpec, RouteType } from "../core/kernel.ts";

/** A change a node made, as its journal keeps it (oldest first). */
export type Change =
  | { kind: "address"; spec: AddressSpec }
  | { kind: "route"; spec: RouteSpec }
  | { kind: "tap"; name: string }
  /** Babel packets dropped on a tap (nftables). */
  | { kind: "drain"; tap: string };

/** Where the journal of a node's changes is kept between runs (a kill -9 leaves it). */
export interface JournalStore {
  /** Replaces the stored journal with `changes` (oldest first). */
  save(changes: readonly Change[]): Promise<void>;
  /** The stored journal ([] when there is none or it is unreadable). */
  load(): Promise<Change[]>;
}

/**
 * Kernel primitives. Adds return true when they changed the machine and false when the
 * object was already there; removes return true when they removed something and false when it
 * was already gone. Other failures throw (a `CommandError` for the Linux implementation).
 */
export interface KernelOps {
  addAddress(a: AddressSpec): Promise<boolean>;
  removeAddress(a: AddressSpec): Promise<boolean>;
  addRoute(r: RouteSpec): Promise<boolean>;
  removeRoute(r: RouteSpec): Promise<boolean>;
  /** Creates a persistent layer-2 tap device (down, no address). */
  createTap(name: string): Promise<boolean>;
  deleteTap(name: string): Promise<boolean>;
  /** Drops Babel packets in and out of a tap (creating the drain table when needed). */
  drain(tap: string): Promise<boolean>;
  /** Lets Babel packets through a tap again. */
  undrain(tap: string): Promise<boolean>;
  /** Deletes the drain table; false when there was none. */
  dropDrainTable(): Promise<boolean>;
  /** Deletes `fe80::/64 dev lo` (§7.1 step 10). */
  removeLoopbackLinkLocalRoute(): Promise<boolean>;
  /** Adds and deletes `unreachable ::/128 from ::/128` (§7.1 step 4); leaves nothing behind. */
  hasSourceRouting(): Promise<boolean>;
  /**
   * Routes of any table whose destination or source lies inside one of `networks` (kernel
   * routes excepted), with their protocol.
   */
  listRoutes(networks: readonly string[]): Promise<RouteSpec[]>;
  /** The machine's global addresses outside re6st (see core/node/addresses.ts). */
  localAddresses(): Promise<string[]>;
}
