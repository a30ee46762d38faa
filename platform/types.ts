/**
 * The kernel boundary of a node (PROTOCOL.md §7.1 steps 4, 8, 10, 13; §8.2; §1.6).
 *
 * `core/` says what it wants (addresses, routes, tap devices, sysctls); a {@link Platform}
 * makes the machine match and journals every change it actually made, so that
 * {@link Platform.undoAll} removes exactly that, in reverse order, and nothing else.
 * `platform/linux.ts` implements it with `ip`; `platform/recorder.ts` is the fake for tests.
 */

/** IP family. */
export type Family = 4 | 6;

/** An address on an interface. */
export interface AddressSpec {
  /** CIDR such as `2001:db8:42:6::1/64` or `10.42.1.1/24` (bare address: /128 or /32). */
  address: string;
  dev: string;
}

/** Kinds of route (a node installs unicast and unreachable; others appear in leftovers). */
export type RouteType = "unicast" | "unreachable" | "blackhole" | "prohibit" | "throw";

/** A route, as `ip route add` takes it. */
export interface RouteSpec {
  /** Destination CIDR or `"default"`. */
  dst: string;
  /** Default `"unicast"`. */
  type?: RouteType;
  /** Needed only when the family cannot be told from `dst`/`via`/`from` (e.g. bare "default"). */
  family?: Family;
  /** Source prefix of a source-specific route (needs IPv6 subtrees, §7.1 step 4). */
  from?: string;
  via?: string;
  dev?: string;
  /** Routing protocol tag, e.g. `"static"`. */
  proto?: string;
  /** Routing table (number or name); main when absent. */
  table?: number | string;
  metric?: number;
}

/** Link settings; absent fields are left as they are. */
export interface LinkSettings {
  up?: boolean;
  mtu?: number;
}

/** A change a platform made and will undo (oldest first in {@link Platform.changes}). */
export type Change =
  | { kind: "address"; spec: AddressSpec }
  | { kind: "route"; spec: RouteSpec }
  | { kind: "tap"; name: string }
  | { kind: "sysctl"; key: string; value: string; previous: string };

/** Where a platform keeps its journal between runs (a node killed with -9 leaves it). */
export interface JournalStore {
  /** Replaces the stored journal with `changes` (oldest first). */
  save(changes: readonly Change[]): Promise<void>;
}

/** What to look for when a node starts after a crash (kill -9 leaves state behind). */
export interface LeftoverQuery {
  /** Networks (CIDR) whose addresses and routes belong to re6st: the network, the IPv4 one. */
  networks: string[];
  /** Name prefix of tap devices that belong to re6st (default `"re6stnet"`). */
  tapPrefix?: string;
}

/** State found by {@link Platform.listLeftovers}. */
export interface Leftovers {
  /** Addresses inside one of the networks, on any interface. */
  addresses: AddressSpec[];
  /**
   * Routes whose destination or source lies inside one of the networks (any table, any
   * protocol, including routes babeld left), except kernel-made routes.
   */
  routes: RouteSpec[];
  /** Tap devices whose name starts with the prefix. */
  taps: string[];
}

/** The state core/ wants; {@link Platform.apply} converges to it. */
export interface DesiredState {
  taps?: string[];
  addresses?: AddressSpec[];
  routes?: RouteSpec[];
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
  /** Sets a link up/down and its MTU (not journaled: such links are deleted, not restored). */
  setLink(name: string, s: LinkSettings): Promise<void>;
  /** Deletes `fe80::/64 dev lo` (§7.1 step 10; not journaled, like the reference). */
  removeLoopbackLinkLocalRoute(): Promise<boolean>;
  getSysctl(key: string): Promise<string>;
  putSysctl(key: string, value: string): Promise<void>;
  /**
   * Tells whether the kernel has IPv6 source routing (CONFIG_IPV6_SUBTREES) by adding and
   * deleting `unreachable ::/128 from ::/128` (§7.1 step 4). Leaves nothing behind.
   */
  hasSourceRouting(): Promise<boolean>;
  listLeftovers(q: LeftoverQuery): Promise<Leftovers>;
}

/**
 * What a node uses: kernel primitives plus the journal that makes teardown exact.
 * `addAddress`, `addRoute` and `createTap` journal what they actually added; the matching
 * removes drop the journal entry. Sysctls are changed through `setSysctl` only.
 */
export interface Platform extends Omit<KernelOps, "putSysctl"> {
  /** Sets a sysctl, remembering the previous value so undoAll() restores it. */
  setSysctl(key: string, value: string): Promise<void>;
  /**
   * Makes the taps, addresses and routes this platform added match `want`: adds what is
   * missing, removes what it added earlier that is no longer wanted. Idempotent.
   */
  apply(want: DesiredState): Promise<void>;
  /** Removes leftovers (routes, then addresses, then taps) without journaling them. */
  removeLeftovers(l: Leftovers): Promise<void>;
  /** Changes made and not yet undone, oldest first. */
  changes(): readonly Change[];
  /**
   * From now on, writes the journal to `store` before each change (with the change about to
   * be made) and after it, so that the next run can undo exactly this run's changes after a
   * crash (see {@link undoPrevious}).
   */
  persistJournal(store: JournalStore): Promise<void>;
  /**
   * Undoes the changes a previous run journaled, newest first; objects already gone are
   * fine. Changes that cannot be undone join this journal (retried by undoAll); returns
   * their number.
   */
  undoPrevious(changes: readonly Change[]): Promise<number>;
  /**
   * Undoes every journaled change, newest first; idempotent. Keeps going past failures and
   * then throws an AggregateError; changes that failed to undo stay journaled for a retry.
   */
  undoAll(): Promise<void>;
}
