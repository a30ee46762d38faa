// Revocation (PROTOCOL.md §3.7, §7.7, §8.1.4): what the certificate revocation list in force
// means for this node, decided in one place. A revoked client is refused at connection
// (tunnels/served.ts asks isRevoked); a CRL change closes our tunnels to revoked servers and
// to peers the peer protocol just forgot, restarts the servers when one of their clients is
// revoked (OpenVPN keeps an accepted client's session), and renews our own certificate when
// it is the one revoked (the start-up renewal replaces it, §3.8).

import type { Bits } from "../addressing.ts";

/** Whether `serial` is revoked by `crl` (§3.7). */
export function isRevoked(crl: ReadonlySet<bigint>, serial: bigint | undefined): boolean {
  return serial !== undefined && crl.has(serial);
}

/** What the node has that a CRL can touch. */
export interface RevocationView {
  /** Our own certificate's serial. */
  ownSerial: bigint;
  /** Client tunnels, with the serial their server presented at route-up (once up). */
  tunnels: readonly { prefix: Bits; serial?: bigint }[];
  /** Clients connected to our servers. */
  served: readonly { cn: string; serial: bigint }[];
  /** Peers whose peer protocol session was just dropped for a revoked certificate. */
  forgotten: readonly Bits[];
}

/** What a CRL means for the node. */
export interface RevocationEffects {
  /** Client tunnels to close. */
  close: Bits[];
  /** Served clients whose certificate is revoked (CNs): the servers must restart. */
  servedRevoked: string[];
  /** Our own certificate is revoked: restart, and renew it at start-up. */
  renew: boolean;
}

/** The effects of the CRL `crl` on what the node has (§3.7, §7.7). */
export function revocationEffects(
  crl: ReadonlySet<bigint>,
  view: RevocationView,
): RevocationEffects {
  const forgotten = new Set(view.forgotten);
  return {
    close: view.tunnels
      .filter((t) => isRevoked(crl, t.serial) || forgotten.has(t.prefix))
      .map((t) => t.prefix),
    servedRevoked: view.served.filter((c) => isRevoked(crl, c.serial)).map((c) => c.cn),
    renew: isRevoked(crl, view.ownSerial),
  };
}
