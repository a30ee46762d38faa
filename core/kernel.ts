/**
 * The contract between core and the machine's kernel (PROTOCOL.md §7.1 steps 4, 8, 10, 13;
 * §8.2; §8.4.5; §1.6; STYLE.md 6).
 *
 * core/ computes the whole state it wants (taps, addresses, routes, taps whose Babel packets
 * are dropped) and hands it to a {@link Kernel}; platform/ makes the machine match, journals
 * every change before making it, and removes exactly what it made when the node asks for the
 * empty state, or, after a kill -9, at the next start. core never imports platform/.
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

/** What a node wants of the kernel, as a whole; the same state may be applied again. */
export interface KernelState {
  /** Persistent tap devices (OpenVPN attaches to them). */
  taps: readonly string[];
  addresses: readonly AddressSpec[];
  routes: readonly RouteSpec[];
  /** Taps whose Babel packets (UDP 6696) are dropped both ways: tunnels being retired. */
  drained: readonly string[];
}

/** Nothing: what a stopping node applies. */
export const EMPTY_KERNEL_STATE: KernelState = { taps: [], addresses: [], routes: [], drained: [] };

/** Where the leftovers of a crashed node are looked for. */
export interface LeftoverScope {
  /** CIDRs of the re6st network and of its IPv4 payload network, if any. */
  networks: readonly string[];
}

/** The machine's kernel as a node uses it (platform/kernel.ts implements it). */
export interface Kernel {
  /**
   * Makes the objects this node made match `want`: adds what is missing, removes what it made
   * and no longer wants (newest first). Each change is journaled before it is made, so that
   * the next start can undo it after a kill -9. An object that was already there is left to
   * its owner and never removed. Idempotent. Failures are thrown after trying every change.
   */
  apply(want: KernelState): Promise<void>;
  /**
   * Removes what a node that died without its teardown left in `scope` (a kill -9, a crash):
   * what its journal lists, the routes babeld installed (`proto babel`) and the drain table.
   * Objects the operator made are kept. Returns one line per object removed.
   */
  clearLeftovers(scope: LeftoverScope): Promise<string[]>;
  /** Objects this node made and has not removed yet, in words (teardown reports them). */
  owned(): string[];
  /** Whether IPv6 source routing (CONFIG_IPV6_SUBTREES) works (§7.1 step 4); leaves nothing. */
  hasSourceRouting(): Promise<boolean>;
  /** Deletes `fe80::/64 dev lo` (§7.1 step 10; not undone, like the reference). */
  removeLoopbackLinkLocalRoute(): Promise<boolean>;
  /** The machine's global addresses outside re6st (`lo` and re6st taps excluded). */
  localAddresses(): Promise<string[]>;
}
