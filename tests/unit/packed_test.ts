import assert from "node:assert/strict";
import { decodePacked, encodePacked, PACKED_MAX, packedLength } from "../../core/packed.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (h: string) => Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));

// VECTORS.md §1
const VECTORS: [bigint, string][] = [
  [0n, "00"],
  [1n, "01"],
  [10n, "0a"],
  [31n, "1f"],
  [32n, "2000"],
  [33n, "2001"],
  [8223n, "3fff"],
  [8224n, "400000"],
  [8225n, "400001"],
  [2105375n, "5fffff"],
  [2105376n, "60000000"],
  [538976287n, "7fffffff"],
  [538976288n, "8000000000"],
  [137977929759n, "9fffffffff"],
  [137977929760n, "a00000000000"],
  [35322350018591n, "bfffffffffff"],
  [35322350018592n, "c0000000000000"],
  [9042521604759583n, "dfffffffffffff"],
  [9042521604759584n, "e000000000000000"],
  [2314885530818453535n, "ffffffffffffffff"],
];

for (const [value, encoding] of VECTORS) {
  Deno.test(`packed integer ${value} encodes as ${encoding} and decodes back`, () => {
    assert.equal(hex(encodePacked(value)), encoding);
    assert.deepEqual(decodePacked(unhex(encoding)), { value, length: encoding.length / 2 });
    assert.equal(packedLength(unhex(encoding)[0]), encoding.length / 2);
  });
}

Deno.test("small numbers may be given as number", () => {
  assert.equal(hex(encodePacked(10)), "0a");
  assert.equal(hex(encodePacked(1000)), "23c8");
});

Deno.test("decoding ignores trailing data and honours the offset", () => {
  assert.deepEqual(decodePacked(unhex("0affff")), { value: 10n, length: 1 });
  assert.deepEqual(decodePacked(unhex("ff2000ff"), 1), { value: 32n, length: 2 });
});

Deno.test("a truncated packed integer is an error", () => {
  assert.throws(() => decodePacked(unhex("21")), /2 bytes announced, 1 present/);
  assert.throws(() => decodePacked(new Uint8Array(0)), /no data/);
});

Deno.test("values above the maximum or negative cannot be encoded", () => {
  assert.equal(PACKED_MAX, 0x202020202020201fn);
  assert.throws(() => encodePacked(0x202020202020201fn + 1n), RangeError);
  assert.throws(() => encodePacked(-1), RangeError);
  assert.throws(() => encodePacked(1.5), RangeError);
});

Deno.test("byte-wise order of encodings equals numeric order", () => {
  const values = [0n, 5n, 31n, 32n, 8223n, 8224n, 1n << 40n, (1n << 60n) + 7n, PACKED_MAX];
  const cmp = (a: Uint8Array, b: Uint8Array) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  };
  for (let i = 1; i < values.length; i++) {
    assert.ok(cmp(encodePacked(values[i - 1]), encodePacked(values[i])) < 0, `${values[i]}`);
    assert.equal(decodePacked(encodePacked(values[i])).value, values[i]);
  }
});
