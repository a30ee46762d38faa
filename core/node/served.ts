// The clients connected to our OpenVPN servers (PROTOCOL.md §7.5 "Server side", §8.1.4): one
// record, kept by the node from the OpenVPN hooks and read by the tunnel manager and status.

import { type Bits, prefixFromCn } from "../addressing.ts";
import type { ClientConnectEvent } from "../openvpn/hooks.ts";
import type { ServedClient } from "./status.ts";

/** One client on one server tap. */
export interface ServedEntry {
  /** Its prefix, or null when its CN is not a prefix (the base manager accepts it). */
  prefix: Bits | null;
  cn: string;
  iface: string;
  serial: bigint;
  trustedIp: string;
  trustedPort: number;
  /** When it connected (ms). */
  since: number;
}

/** The book of served clients, by server tap and CN. */
export class ServedBook {
  readonly #entries = new Map<string, ServedEntry>();

  /** Records a client that connected at `now` (ms); replaces an earlier entry. */
  connect(ev: ClientConnectEvent, now: number): ServedEntry {
    let prefix: Bits | null = null;
    try {
      prefix = prefixFromCn(ev.commonName);
    } catch {
      // Not a node certificate's CN: kept for status, never a peer.
    }
    const e: ServedEntry = {
      prefix,
      cn: ev.commonName,
      iface: ev.dev,
      serial: ev.serial,
      trustedIp: ev.trustedIp,
      trustedPort: ev.trustedPort,
      since: now,
    };
    this.#entries.set(key(ev.dev, ev.commonName), e);
    return e;
  }

  /** Forgets the client `cn` of tap `iface`; false when it was not there. */
  disconnect(iface: string, cn: string): boolean {
    return this.#entries.delete(key(iface, cn));
  }

  /** Forgets every client of tap `iface` (its server exited) and returns them. */
  dropInterface(iface: string): ServedEntry[] {
    const gone = [...this.#entries.values()].filter((e) => e.iface === iface);
    for (const e of gone) this.#entries.delete(key(e.iface, e.cn));
    return gone;
  }

  /** Whether the peer `prefix` is connected to one of our servers. */
  has(prefix: Bits): boolean {
    for (const e of this.#entries.values()) if (e.prefix === prefix) return true;
    return false;
  }

  /** Number of distinct peers served. */
  get size(): number {
    return this.prefixes().length;
  }

  /** Distinct peers served, in connection order. */
  prefixes(): Bits[] {
    const out = new Set<Bits>();
    for (const e of this.#entries.values()) if (e.prefix !== null) out.add(e.prefix);
    return [...out];
  }

  /** Server taps the peer `prefix` is connected to. */
  interfaces(prefix: Bits): string[] {
    return [...this.#entries.values()].filter((e) => e.prefix === prefix).map((e) => e.iface);
  }

  /** Every entry, in connection order. */
  entries(): ServedEntry[] {
    return [...this.#entries.values()];
  }

  /** Entries as the status shows them. */
  list(): ServedClient[] {
    return this.entries().map((e) => ({
      peer: e.cn,
      iface: e.iface,
      serial: e.serial.toString(),
      remote: `${e.trustedIp} ${e.trustedPort}`,
      since: e.since,
    }));
  }
}

function key(iface: string, cn: string): string {
  return `${iface} ${cn}`;
}
