// Clients of our OpenVPN servers (PROTOCOL.md §7.5 "Server side", §8.1.4): who may connect,
// and the one book of those connected, kept by the node from the OpenVPN hooks and read by
// the tunnel manager and the status.

import { type Bits, prefixFromCn } from "../../addressing.ts";
import type { ClientConnectEvent } from "../../openvpn/hooks.ts";
import { isRevoked } from "../revocation.ts";

/** One client on one server tap. */
export interface ServedEntry {
  prefix: Bits;
  cn: string;
  iface: string;
  /** Protocol of the server it connected to (`tcp`, `udp6`…). */
  protocol: string;
  serial: bigint;
  trustedIp: string;
  trustedPort: number;
  /** When it connected (ms). */
  since: number;
}

/** What decides whether a connecting client is accepted. */
export interface AdmissionFacts {
  /** Our CN, or null while start-up has not loaded the identity and settings. */
  ourCn: string | null;
  /** Revoked serials in force. */
  crl: ReadonlySet<bigint>;
  /** `--client` mode: the node serves nobody. */
  clientMode: boolean;
}

/** Why a client connecting to one of our servers is refused, or null to accept it (§8.1.4). */
export function refusal(ev: ClientConnectEvent, f: AdmissionFacts): string | null {
  if (f.ourCn === null) return "the node is not ready";
  if (f.clientMode) return "this node runs in --client mode";
  try {
    prefixFromCn(ev.commonName);
  } catch {
    return `invalid common name ${ev.commonName}`;
  }
  if (ev.commonName === f.ourCn) return "it presents our own certificate";
  if (isRevoked(f.crl, ev.serial)) return `certificate serial ${ev.serial} is revoked`;
  return null;
}

/** The book of served clients, by server tap and CN. */
export class ServedBook {
  readonly #entries = new Map<string, ServedEntry>();

  /** Records an admitted client that connected at `now` (ms); replaces an earlier entry. */
  connect(ev: ClientConnectEvent, now: number, protocol: string): ServedEntry {
    const e: ServedEntry = {
      prefix: prefixFromCn(ev.commonName),
      cn: ev.commonName,
      iface: ev.dev,
      protocol,
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
    return [...new Set([...this.#entries.values()].map((e) => e.prefix))];
  }

  /** Server taps the peer `prefix` is connected to. */
  interfaces(prefix: Bits): string[] {
    return [...this.#entries.values()].filter((e) => e.prefix === prefix).map((e) => e.iface);
  }

  /** Every entry, in connection order. */
  entries(): ServedEntry[] {
    return [...this.#entries.values()];
  }
}

function key(iface: string, cn: string): string {
  return `${iface} ${cn}`;
}
