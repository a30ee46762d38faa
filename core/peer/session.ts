// Per-peer session state of the peer protocol (PROTOCOL.md §6.3, §6.4): secret ordering,
// sequence numbers, replay protection, liveness and the hello0 rate limit.
//
// Plain data plus pure-ish transition functions; times are milliseconds from the injected
// clock (core/clock.ts).

import type { Bits } from "../addressing.ts";
import { CONNECTED_WINDOW_S, HELLO0_INTERVAL_S } from "../constants.ts";
import { compareBytes } from "../crypto.ts";
import type { PublicKey } from "../crypto.ts";
import { HANDSHAKE_MAX_SEQ, SEQ_MAX } from "./frame.ts";

/** What the peer protocol keeps of a validated peer certificate (§6.6). */
export interface PeerCert {
  /** DER encoding, as received. */
  der: Uint8Array;
  /** Node prefix from the Common Name (§1.2). */
  prefix: Bits;
  /** X.509 serial number (checked against the CRL, §3.7). */
  serial: bigint;
  /** End of validity, milliseconds since the epoch. */
  notAfter: number;
  /** SHA1(DER), the handshake fingerprint (§3.9). */
  fingerprint: Uint8Array;
  /** RSA public key (seq-2 encryption and signature checks). */
  publicKey: PublicKey;
}

/**
 * Liveness marker (§6.4): null = no session, "connected" = answered, a number = time since
 * which a non-empty message has stayed unanswered (0 after we sent a seq 2).
 */
export type Liveness = "connected" | number | null;

/** Per-peer state (§6.4). */
export interface Session {
  prefix: Bits;
  cert: PeerCert | null;
  secret: Uint8Array;
  rxSeq: number;
  txSeq: number;
  /** Protocol number the peer announced in its handshake; 0 when unknown or old. */
  protocol: number;
  last: Liveness;
  /** Time before which no hello0 (seq 0/1) may be sent to this peer. */
  hello0Next: number;
  /** Last network version blob exchanged with this peer. */
  version: Uint8Array | null;
}

/** New state for a peer never talked to, with the process's start-up secret (§6.4). */
export function newSession(prefix: Bits, initialSecret: Uint8Array): Session {
  return {
    prefix,
    cert: null,
    secret: initialSecret,
    rxSeq: HANDSHAKE_MAX_SEQ,
    txSeq: HANDSHAKE_MAX_SEQ,
    protocol: 0,
    last: null,
    hello0Next: 0,
    version: null,
  };
}

/** True when the peer has a session not left unanswered for the connected window (§6.4). */
export function isConnected(s: Session, now: number): boolean {
  if (s.last === null) return false;
  if (s.txSeq >= SEQ_MAX) return false; // sequence space exhausted: a new handshake is needed
  return s.last === "connected" || now < s.last + CONNECTED_WINDOW_S * 1000;
}

/**
 * Arms the hello0 rate limit if it allows sending now; returns whether a hello0 may be sent
 * (at most once every HELLO0_INTERVAL_S per peer, §6.3).
 */
export function takeHello0(s: Session, now: number): boolean {
  if (now < s.hello0Next) return false;
  s.hello0Next = now + HELLO0_INTERVAL_S * 1000;
  return true;
}

/** Starts a session with a secret we generated and are about to send in a seq 2 (§6.3). */
export function startOwnSecret(s: Session, secret: Uint8Array, protocol: number): void {
  s.secret = secret;
  s.rxSeq = s.txSeq = HANDSHAKE_MAX_SEQ;
  s.protocol = protocol;
  s.last = 0; // not connected until the peer answers
}

/**
 * Accepts a secret received in a seq 2 if it is strictly greater than the current one
 * (§6.4 ordering rule); returns whether it was accepted.
 */
export function acceptPeerSecret(s: Session, secret: Uint8Array, protocol: number): boolean {
  if (compareBytes(secret, s.secret) <= 0) return false;
  s.secret = secret;
  s.rxSeq = s.txSeq = HANDSHAKE_MAX_SEQ;
  s.protocol = protocol;
  s.last = "connected";
  return true;
}

/** Next sequence number to send on this session (§6.4: the first data message has seq 3). */
export function nextTxSeq(s: Session): number {
  if (s.txSeq >= SEQ_MAX) throw new RangeError(`Sequence space exhausted for peer ${s.prefix}`);
  return ++s.txSeq;
}

/** Updates liveness after sending a data message (§6.4). */
export function noteSent(s: Session, payloadLength: number, now: number): void {
  if (payloadLength > 0 && (s.last === "connected" || s.last === null)) s.last = now;
}

/** True when `seq` is newer than the last accepted one (replay/reorder protection, §6.4). */
export function isFresh(s: Session, seq: number): boolean {
  return seq > s.rxSeq;
}

/** Records an authenticated data message: advances rx_seq and marks the peer connected. */
export function noteReceived(s: Session, seq: number): void {
  s.rxSeq = seq;
  s.last = "connected";
}
