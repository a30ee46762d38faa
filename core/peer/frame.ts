// Peer protocol framing (PROTOCOL.md §6.2) and the registry relay datagrams (§6.7).
//
// Pure byte-level encoding and decoding; no state, no crypto: MACs are computed by the caller
// and passed in as functions.

import { checkBits } from "../addressing.ts";
import type { Bits } from "../addressing.ts";
import { decodePacked, encodePacked } from "../packed.ts";
import { SECRET_BYTES } from "../constants.ts";

/** Highest handshake sequence number; data messages start above it (§6.2). */
export const HANDSHAKE_MAX_SEQ = 2;
/** Largest sequence number a data message can carry (u32). */
export const SEQ_MAX = 0xffffffff;
/** Length of a SHA-1 certificate fingerprint in a seq-1 message (§3.9). */
export const FINGERPRINT_BYTES = 20;
/** Size of an empty data message: seq + HMAC-SHA1 (§6.4). */
export const EMPTY_DATA_BYTES = 4 + SECRET_BYTES;
/** Forward flag of a code byte (§6.5, §6.7). */
export const FORWARD_FLAG = 0x80;

/** A decoded seq-0 message: the sender's certificate (§6.2). */
export interface Hello0 {
  seq: 0;
  cert: Uint8Array;
}

/** A decoded seq-1 message: protocol, fingerprint of our certificate as known, sender's cert. */
export interface Hello1 {
  seq: 1;
  protocol: number;
  fingerprint: Uint8Array;
  cert: Uint8Array;
}

/** A decoded seq-2 message: protocol (null when absent), encrypted secret and its signature. */
export interface Hello2 {
  seq: 2;
  protocol: number | null;
  encrypted: Uint8Array;
  signature: Uint8Array;
}

/** Any decoded handshake message. */
export type Handshake = Hello0 | Hello1 | Hello2;

/** A data message split into its parts; `signed` is what the MAC covers (§6.4). */
export interface DataFrame {
  seq: number;
  payload: Uint8Array;
  mac: Uint8Array;
  signed: Uint8Array;
}

/** A relay datagram between the registry and its node over ::1 (§6.7, §5.8). */
export interface RelayFrame {
  prefix: Bits;
  code: number;
  payload: Uint8Array;
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Big-endian u32 bytes of a sequence number. */
export function encodeSeq(seq: number): Uint8Array {
  if (!Number.isInteger(seq) || seq < 0 || seq > SEQ_MAX) {
    throw new RangeError(`Invalid sequence number ${seq}: not a u32`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, seq);
  return out;
}

/** Sequence number at the start of a datagram; throws when shorter than 4 bytes. */
export function readSeq(bytes: Uint8Array): number {
  if (bytes.length < 4) throw new RangeError(`Datagram of ${bytes.length} bytes has no sequence`);
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
}

/** Seq-0 message: "I don't know your certificate", with ours (§6.2). */
export function encodeHello0(ownCert: Uint8Array): Uint8Array {
  return concatBytes(encodeSeq(0), ownCert);
}

/** Seq-1 message: our protocol, SHA1 of the receiver's cert as we know it, our cert (§6.2). */
export function encodeHello1(
  protocol: number,
  fingerprint: Uint8Array,
  ownCert: Uint8Array,
): Uint8Array {
  if (fingerprint.length !== FINGERPRINT_BYTES) {
    throw new RangeError(`Invalid fingerprint length ${fingerprint.length}`);
  }
  return concatBytes(encodeSeq(1), encodePacked(protocol), fingerprint, ownCert);
}

/** Seq-2 message: protocol (omitted when null), encrypted secret, signature (§6.2). */
export function encodeHello2(
  protocol: number | null,
  encrypted: Uint8Array,
  signature: Uint8Array,
): Uint8Array {
  if (encrypted.length !== signature.length || encrypted.length === 0) {
    throw new RangeError(
      `Seq-2 halves differ: ${encrypted.length} encrypted bytes, ${signature.length} signature`,
    );
  }
  const p = protocol === null ? new Uint8Array(0) : encodePacked(protocol);
  return concatBytes(encodeSeq(2), p, encrypted, signature);
}

function decodeProtocol(bytes: Uint8Array, offset: number): { protocol: number; length: number } {
  const { value, length } = decodePacked(bytes, offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError("Protocol number too large");
  return { protocol: Number(value), length };
}

/**
 * Decodes a handshake message (seq 0, 1 or 2); null when malformed. With `legacy`, a seq-1
 * message is read without protocol field, as sent by protocol-0 peers (§6.8).
 */
export function decodeHandshake(bytes: Uint8Array, legacy = false): Handshake | null {
  if (bytes.length <= 4) return null;
  const seq = readSeq(bytes);
  try {
    switch (seq) {
      case 0:
        return { seq: 0, cert: bytes.subarray(4) };
      case 1: {
        const { protocol, length } = legacy ? { protocol: 0, length: 0 } : decodeProtocol(bytes, 4);
        const at = 4 + length;
        if (bytes.length <= at + FINGERPRINT_BYTES) return null;
        return {
          seq: 1,
          protocol,
          fingerprint: bytes.subarray(at, at + FINGERPRINT_BYTES),
          cert: bytes.subarray(at + FINGERPRINT_BYTES),
        };
      }
      case 2: {
        // The reference always reads the protocol field (QUIRK Q15).
        const { protocol, length } = decodeProtocol(bytes, 4);
        const rest = bytes.subarray(4 + length);
        if (rest.length === 0 || rest.length % 2 !== 0) return null;
        const half = rest.length / 2;
        return {
          seq: 2,
          protocol,
          encrypted: rest.subarray(0, half),
          signature: rest.subarray(half),
        };
      }
      default:
        return null;
    }
  } catch {
    return null; // truncated packed integer
  }
}

/** Data message: seq ‖ payload ‖ HMAC-SHA1(secret, seq ‖ payload) (§6.2, §6.4). */
export function encodeData(
  seq: number,
  payload: Uint8Array,
  mac: (signed: Uint8Array) => Uint8Array,
): Uint8Array {
  if (seq <= HANDSHAKE_MAX_SEQ) throw new RangeError(`Data message with handshake seq ${seq}`);
  const signed = concatBytes(encodeSeq(seq), payload);
  return concatBytes(signed, mac(signed));
}

/** Splits a data message (seq ≥ 3, at least seq + MAC); null when malformed. */
export function decodeData(bytes: Uint8Array): DataFrame | null {
  if (bytes.length < EMPTY_DATA_BYTES) return null;
  const seq = readSeq(bytes);
  if (seq <= HANDSHAKE_MAX_SEQ) return null;
  const end = bytes.length - SECRET_BYTES;
  return {
    seq,
    payload: bytes.subarray(4, end),
    mac: bytes.subarray(end),
    signed: bytes.subarray(0, end),
  };
}

/** Relay datagram: prefix bit-string (ASCII) ‖ 0x00 ‖ code ‖ payload (§6.7). */
export function encodeRelay(
  prefix: Bits,
  code: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  checkBits(prefix, 128, "relay prefix");
  if (prefix === "") throw new RangeError("Relay prefix must not be empty");
  if (!Number.isInteger(code) || code < 0 || code > 0xff) {
    throw new RangeError(`Invalid relay code ${code}`);
  }
  return concatBytes(new TextEncoder().encode(prefix), Uint8Array.of(0, code), payload);
}

/**
 * Decodes a relay datagram; null unless the prefix is a non-empty bit-string followed by NUL
 * and at least a code byte (§6.7).
 */
export function decodeRelay(bytes: Uint8Array): RelayFrame | null {
  const nul = bytes.indexOf(0);
  if (nul <= 0 || nul > 128 || nul + 1 >= bytes.length) return null;
  for (let i = 0; i < nul; i++) if (bytes[i] !== 0x30 && bytes[i] !== 0x31) return null;
  return {
    prefix: new TextDecoder().decode(bytes.subarray(0, nul)),
    code: bytes[nul + 1],
    payload: bytes.subarray(nul + 2),
  };
}
