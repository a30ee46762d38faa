// Registry request/response authentication and key chaining (PROTOCOL.md §4.3.2).

import { bytesEqual, hmacSha1, sha1 } from "../crypto.ts";

/** HMAC-SHA1 of the exact request-target (e.g. "/getNetworkConfig?cn=…") under key K. */
export function requestMac(key: Uint8Array, target: string): Uint8Array {
  return hmacSha1(key, target);
}

/** HMAC-SHA1 of a response body (empty for 204) under K1 = SHA1(K). */
export function responseMac(k1: Uint8Array, body: Uint8Array | string): Uint8Array {
  return hmacSha1(k1, body);
}

/** Keys derived from K after one call: k1 = SHA1(K) for the response, next = SHA1(k1). */
export function nextKeys(key: Uint8Array): { k1: Uint8Array; next: Uint8Array } {
  const k1 = sha1(key);
  return { k1, next: sha1(k1) };
}

/** Value of the Re6stHMAC header for a MAC: standard base64 with padding. */
export function encodeMacHeader(mac: Uint8Array): string {
  return btoa(String.fromCharCode(...mac));
}

/** MAC bytes of a Re6stHMAC header value, or null when it is not valid base64. */
export function decodeMacHeader(value: string | null | undefined): Uint8Array | null {
  if (!value) return null;
  try {
    return Uint8Array.from(atob(value.trim()), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Whether a received Re6stHMAC header value matches the expected MAC (constant time). */
export function macMatches(header: string | null | undefined, expected: Uint8Array): boolean {
  const mac = decodeMacHeader(header);
  return mac !== null && bytesEqual(mac, expected);
}
