// Signed network configuration version blobs (PROTOCOL.md §4.8):
// packed integer V ‖ PKCS1-SIG(CA key, packed integer V).

import {
  compareBytes,
  type PrivateKeyInput,
  type PublicKeyInput,
  rsaSign,
  rsaVerify,
} from "../crypto.ts";
import { decodePacked, encodePacked, packedLength } from "../packed.ts";

/** The signed version blob of version `v`, signed with the CA key. */
export function signVersion(caKey: PrivateKeyInput, v: number | bigint): Uint8Array {
  const packed = encodePacked(v);
  const sig = rsaSign(caKey, packed);
  const blob = new Uint8Array(packed.length + sig.length);
  blob.set(packed);
  blob.set(sig, packed.length);
  return blob;
}

/** The version number of a blob if its signature verifies with the CA public key, else null. */
export function verifyVersion(caPublicKey: PublicKeyInput, blob: Uint8Array): bigint | null {
  if (blob.length === 0) return null;
  const n = packedLength(blob[0]);
  if (blob.length <= n) return null;
  if (!rsaVerify(caPublicKey, blob.subarray(0, n), blob.subarray(n))) return null;
  return decodePacked(blob).value;
}

/** The version number written in a blob, without checking the signature (null if too short). */
export function versionOf(blob: Uint8Array): bigint | null {
  if (blob.length === 0 || blob.length < packedLength(blob[0])) return null;
  return decodePacked(blob).value;
}

/** Orders two valid blobs by version (byte-wise comparison, §4.8): negative, 0 or positive. */
export function compareVersions(a: Uint8Array, b: Uint8Array): number {
  return compareBytes(a, b);
}

/**
 * The blob of the version after `current` (a stored blob, or the unsigned `00` of a fresh
 * registry; its signature is not checked), signed with the CA key.
 */
export function nextVersionBlob(current: Uint8Array, caKey: PrivateKeyInput): Uint8Array {
  const v = versionOf(current);
  if (v === null) throw new Error("Stored network configuration version is truncated");
  return signVersion(caKey, v + 1n);
}
