// Packed integers (PROTOCOL.md §2): order-preserving variable-length encoding in 1 to 8 bytes.

/** Largest value that can be packed: 0x202020202020201f (§2). */
export const PACKED_MAX = 0x202020202020201fn;

/** B(n): number of values representable with n+1 bytes. */
const B = (n: number): bigint => 32n << BigInt(8 * n);
/** O(n): first value needing n+1 bytes. */
const O = (n: number): bigint => {
  let o = 0n;
  for (let i = 0; i < n; i++) o += B(i);
  return o;
};

/** Encodes a non-negative integer as a packed integer (§2); throws when out of range. */
export function encodePacked(v: number | bigint): Uint8Array {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new RangeError(`Cannot pack ${v}: not a safe integer`);
  }
  const value = BigInt(v);
  if (value < 0n) throw new RangeError(`Cannot pack ${value}: negative`);
  for (let n = 0; n < 8; n++) {
    const o = O(n);
    if (value < o + B(n)) {
      let w = value - o + BigInt(n) * B(n);
      const out = new Uint8Array(n + 1);
      for (let i = n; i >= 0; i--) {
        out[i] = Number(w & 0xffn);
        w >>= 8n;
      }
      return out;
    }
  }
  throw new RangeError(`Cannot pack ${value}: above ${PACKED_MAX}`);
}

/** Decodes a packed integer at `offset` (trailing data is ignored); throws when truncated. */
export function decodePacked(bytes: Uint8Array, offset = 0): { value: bigint; length: number } {
  if (offset >= bytes.length) throw new RangeError("Cannot decode packed integer: no data");
  const n = bytes[offset] >> 5;
  if (bytes.length - offset < n + 1) {
    throw new RangeError(
      `Cannot decode packed integer: ${n + 1} bytes announced, ${bytes.length - offset} present`,
    );
  }
  let w = 0n;
  for (let i = 0; i <= n; i++) w = (w << 8n) | BigInt(bytes[offset + i]);
  return { value: w - BigInt(n) * B(n) + O(n), length: n + 1 };
}

/** Number of bytes of the packed integer starting with byte `first` (§2). */
export function packedLength(first: number): number {
  return 1 + ((first & 0xff) >> 5);
}
