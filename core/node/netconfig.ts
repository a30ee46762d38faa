// Network configuration propagation while the node runs (PROTOCOL.md §7.7): a newer signed
// version seen from a peer (or announced by the local registry) is fetched 1 s later and
// retried every 300 s; the hourly staleness check fetches once when the registry has been
// out of sight (or `valid_until` passed) on two checks in a row. A stored change is applied
// live (new version gossiped, revocations, revocation.ts) or by a restart
// ({@link restartReason} says which keys need one).

import { describeError } from "../errors.ts";
import {
  NETCONF_CHECK_S,
  NEW_VERSION_DELAY_S,
  NEW_VERSION_RETRY_S,
  PROTOCOL_VERSION,
} from "../constants.ts";
import type { Bits } from "../addressing.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { type BabelChange, babelChange } from "./babel.ts";
import { revocationEffects, type RevocationView } from "./revocation.ts";
import type { EffectiveSettings } from "./settings.ts";

/**
 * Keys whose change needs a restart on every node (§7.7). The Babel keys (babel_default,
 * babel_hmac_*) are applied to babeld alone instead (babel.ts babelChange): the node, its
 * tunnels and their traffic stay up (docs/babel-key-rotation.md).
 */
export const RESTART_KEYS = ["encrypt", "hello", "ipv4", "ipv4_sublen"] as const;
/** Keys whose change needs a restart on nodes that open client tunnels (§7.7). */
export const CLIENT_RESTART_KEYS = [
  "client_count",
  "max_clients",
  "same_country",
  "tunnel_refresh",
] as const;

/** Facts that decide whether changed keys need a restart. */
export interface RestartFacts {
  /** The node opens client tunnels (not `--client` mode, client_count > 0). */
  clientTunnels: boolean;
  /** Keys overridden on the command line (`client_count`, `max_clients`): never restart. */
  overridden?: ReadonlySet<string>;
  /** Network `min_protocol`, after the change. */
  minProtocol: number;
}

/** Why changed keys need a restart, or null when everything applies live (§7.7). */
export function restartReason(changed: readonly string[], f: RestartFacts): string | null {
  const keys = changed.filter((k) =>
    !f.overridden?.has(k) &&
    ((RESTART_KEYS as readonly string[]).includes(k) ||
      (f.clientTunnels && (CLIENT_RESTART_KEYS as readonly string[]).includes(k)))
  );
  if (keys.length) return `new network parameters: ${keys.join(", ")}`;
  if (PROTOCOL_VERSION < f.minProtocol) {
    return `the network requires protocol ${f.minProtocol} (we speak ${PROTOCOL_VERSION})`;
  }
  return null;
}

/** Options of {@link NetconfUpdates}. */
export interface NetconfUpdatesOptions {
  clock: Clock;
  log: Logger;
  /** Fetches, verifies and stores the configuration; returns the changed keys. */
  fetch(): Promise<string[]>;
  /** Applies a stored change (called only when something changed). */
  apply(changed: string[]): Promise<void>;
  /** The registry node never runs the staleness check (§7.9). */
  isRegistryNode(): boolean;
  /** `valid_until` of the stored configuration (UNIX seconds), or null. */
  validUntil(): number | null;
}

/** Fetches newer configurations when told to, and checks for staleness (§7.7). */
export class NetconfUpdates {
  readonly #o: NetconfUpdatesOptions;
  /** When the pending fetch is due (ms), or null. */
  #due: number | null = null;
  #wake = new AbortController();
  #lastCheck: number | null = null;
  #suspect = false;
  #running: Promise<unknown> = Promise.resolve();

  constructor(o: NetconfUpdatesOptions) {
    this.#o = o;
  }

  /** A newer version exists (peer gossip or the registry): fetch in 1 s (§6.5). */
  newVersion(): void {
    const at = this.#o.clock.now() + NEW_VERSION_DELAY_S * 1000;
    if (this.#due === null || this.#due > at) {
      this.#due = at;
      this.#wake.abort();
    }
  }

  /** True while a fetch is scheduled or retrying. */
  get pending(): boolean {
    return this.#due !== null;
  }

  /**
   * The staleness check, at the first dump and then hourly (§7.7): `registryKnown` says
   * whether the registry prefix is a known node in that dump.
   */
  check(registryKnown: boolean): void {
    const o = this.#o;
    if (o.isRegistryNode()) return;
    const now = o.clock.now();
    const first = this.#lastCheck === null;
    if (!first && now - this.#lastCheck! < NETCONF_CHECK_S * 1000) return;
    this.#lastCheck = now;
    const validUntil = o.validUntil();
    const expired = validUntil !== null && validUntil * 1000 < now;
    const outdated = !registryKnown || expired;
    if (outdated && (this.#suspect || (first && expired))) {
      o.log.info(
        expired
          ? "The network configuration is past its valid_until; fetching it again"
          : "The registry has been unreachable for a while; fetching the configuration once",
      );
      this.#suspect = false;
      this.#running = this.#running.then(() => this.#fetch(false));
      return;
    }
    this.#suspect = outdated;
  }

  /** Runs scheduled fetches until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const clock = this.#o.clock;
    while (!signal.aborted) {
      const wake = this.#wake;
      const due = this.#due;
      if (due !== null && clock.now() >= due) {
        this.#due = null;
        const fetching = this.#running.then(() => this.#fetch(true));
        this.#running = fetching;
        const ok = await fetching;
        if (!ok && this.#due === null) {
          this.#due = clock.now() + NEW_VERSION_RETRY_S * 1000;
        }
        continue;
      }
      const ms = due === null ? 3_600_000 : due - clock.now();
      if (!wake.signal.aborted) await clock.sleep(ms, AbortSignal.any([signal, wake.signal]));
      if (wake.signal.aborted) this.#wake = new AbortController();
    }
    await this.#running;
  }

  /** One fetch; true on success (changed or not). */
  async #fetch(retry: boolean): Promise<boolean> {
    const log = this.#o.log;
    let changed: string[];
    try {
      changed = await this.#o.fetch();
    } catch (e) {
      log.warn(
        `Cannot fetch the new network configuration: ${describeError(e)}` +
          (retry ? `; will retry in ${NEW_VERSION_RETRY_S} s` : ""),
      );
      return false;
    }
    if (changed.length === 0) {
      log.debug("Network configuration fetched: nothing changed");
      return true;
    }
    log.info(`New network configuration: ${changed.join(", ")} changed`);
    try {
      await this.#o.apply(changed);
    } catch (e) {
      log.error(
        `Cannot apply the new network configuration: ${describeError(e)}`,
      );
    }
    return true;
  }
}

/** What applying a stored configuration change acts on (the node wires it). */
export interface ConfigTarget {
  /** The settings in force before the change. */
  current(): EffectiveSettings;
  /** The settings from the stored configuration, now in force; throws when unusable. */
  settle(): EffectiveSettings;
  /** Our version changed: the peer protocol adopts it and gossips it to Babel neighbours. */
  announce(): void;
  /** Forgets peer protocol sessions whose certificate `crl` revokes; returns their prefixes. */
  forgetRevoked(crl: ReadonlySet<bigint>): Bits[];
  /** What the node has that the CRL can touch, given the peers just forgotten. */
  revocationView(forgotten: Bits[]): RevocationView;
  closeTunnels(prefixes: readonly Bits[], reason: string): Promise<number>;
  /** Restarts the node at once. */
  restart(reason: string): void;
  /** Restarts the node after `delayS` seconds. */
  restartLater(reason: string, delayS: number): void;
  /** Applies what the change means for babeld (babel.ts babelChange). */
  babel(change: BabelChange): Promise<void>;
  clock: Clock;
  /** Keys given on the command line (`client_count`, `max_clients`): never a restart. */
  overridden: ReadonlySet<string>;
  log: Logger;
}

/** Applies a stored configuration change: live where it can, else by a restart (§7.7). */
export async function applyConfigChange(changed: string[], t: ConfigTarget): Promise<void> {
  const before = t.current();
  let s: EffectiveSettings;
  try {
    s = t.settle();
  } catch (e) {
    t.restart(describeError(e));
    return;
  }
  t.announce();
  if (s.protocol > PROTOCOL_VERSION) {
    t.log.warn(`The network runs protocol ${s.protocol}: a new version of re6st is available`);
  }
  const forgotten = t.forgetRevoked(s.crl);
  const effects = revocationEffects(s.crl, t.revocationView(forgotten));
  const closed = await t.closeTunnels(effects.close, "certificate revoked");
  if (forgotten.length || closed) {
    t.log.info(`Revoked certificates: forgot ${forgotten.length} peers, closed ${closed} tunnels`);
  }
  if (effects.renew) {
    t.restart("our own certificate was revoked");
    return;
  }
  const reason = restartReason(changed, {
    clientTunnels: s.clientMode === null,
    overridden: t.overridden,
    minProtocol: s.minProtocol,
  }) ?? (effects.servedRevoked.length ? "a client of our servers was revoked" : null);
  if (reason === null) {
    await t.babel(babelChange(before, s, t.clock.now()));
    return;
  }
  const delayS = 1 + s.delayRestartS;
  t.log.info(`Will restart in ${delayS} s: ${reason}`);
  t.restartLater(reason, delayS);
}
