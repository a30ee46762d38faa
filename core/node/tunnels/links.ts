// What the tunnel modules read and call beyond their own state: the live settings, the peer
// protocol and babeld.

import type { Bits } from "../../addressing.ts";
import type { BabelSnapshot } from "../../babel/view.ts";
import type { BabelInterfaces } from "./clients.ts";

/** Network parameters and options the manager reads at every decision (they change live). */
export interface TunnelSettings {
  /** 0 in `--client` mode: the manager then answers the peer protocol and opens nothing. */
  clientCount: number;
  tunnelRefreshS: number;
  helloS: number;
  /** 4 × hello. */
  timeoutS: number;
  registryPrefix: Bits | null;
  crl: ReadonlySet<bigint>;
  disabledProtos: readonly string[];
  sameCountry: readonly string[];
}

/** What the manager needs from the peer protocol (core/peer/protocol.ts PeerProtocol fits). */
export interface PeerLink {
  sendTo(prefix: Bits, code: number, payload?: Uint8Array): boolean;
  probe(prefix: Bits): boolean;
}

/** Babel as the manager uses it (core/babel/local.ts BabelClient fits). */
export interface BabelControl extends BabelInterfaces {
  dump(): Promise<BabelSnapshot>;
}
