// Session-secret exchange of seq-2 messages (PROTOCOL.md §6.3): making one for a peer and
// opening one from a peer. RSA PKCS#1 v1.5 encryption for the receiver, SHA-512 signature.

import { rsaDecrypt, rsaEncrypt, rsaSign, rsaVerify, timeSecret } from "../crypto.ts";
import type { PrivateKey } from "../crypto.ts";
import { SECRET_BYTES } from "../constants.ts";
import type { Hello2 } from "./frame.ts";
import { encodeHello2 } from "./frame.ts";
import type { PeerCert } from "./session.ts";

/**
 * A fresh time-based secret (§3.2) for time `now` (ms), always above `current` so that a
 * peer sharing `current` accepts it even with a coarse clock.
 */
export function newSecret(now: number, current: Uint8Array): Uint8Array {
  let micros = BigInt(Math.floor(now * 1000));
  const floor = new DataView(current.buffer, current.byteOffset, 8).getBigUint64(0);
  if (micros <= floor) micros = floor + 1n;
  return timeSecret(micros);
}

/**
 * Seq-2 datagram carrying `secret` for `peer`: our protocol (omitted when null), the secret
 * encrypted with the peer's key, and our signature of that ciphertext (§6.2).
 */
export function sealHello2(
  secret: Uint8Array,
  peer: PeerCert,
  ownKey: PrivateKey,
  protocol: number | null,
): Uint8Array {
  const encrypted = rsaEncrypt(peer.publicKey, secret);
  return encodeHello2(protocol, encrypted, rsaSign(ownKey, encrypted));
}

/** The secret of a seq-2 message from `peer`, or the reason it must be ignored (§6.3). */
export function openHello2(
  msg: Hello2,
  peer: PeerCert,
  ownKey: PrivateKey,
): { secret: Uint8Array } | { reason: string } {
  if (!rsaVerify(peer.publicKey, msg.encrypted, msg.signature)) return { reason: "bad signature" };
  let secret: Uint8Array;
  try {
    secret = rsaDecrypt(ownKey, msg.encrypted);
  } catch {
    return { reason: "cannot decrypt" };
  }
  if (secret.length !== SECRET_BYTES) return { reason: `secret of ${secret.length} bytes` };
  return { secret };
}
