import assert from "node:assert/strict";
import {
  bytesEqual,
  compareBytes,
  digest,
  fromHex,
  generateRsaKey,
  hmacSha1,
  loadPrivateKey,
  loadPublicKey,
  modulusBits,
  modulusBytes,
  publicKeyOf,
  randomSecret,
  rsaDecrypt,
  rsaEncrypt,
  rsaSign,
  rsaVerify,
  sha1,
  timeSecret,
  toHex,
} from "../../core/crypto.ts";
import {
  NODE1_CERT_PEM,
  NODE1_KEY_PEM,
  TEST_CA_CERT_PEM,
  TEST_CA_KEY_PEM,
} from "../helpers/vectors.ts";

const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

Deno.test("the VECTORS §11 ciphertext decrypts with node 1's key to a peer secret", () => {
  const key = loadPrivateKey(NODE1_KEY_PEM);
  const ct = b64(
    "iAUZJ0mFNyVSyaOEuh3gy4TrUHgO/j0wrQIL+eLdAxgzRiWhhcISy7mKgsjy/t+xzJPr9cNNhmIq4H84N89iiMXfyYdYXsb+V2kTOJgkZThCao5jQARLHAViYvaDR4rX6oOh5tPONzZfVsvD4H0/lfimJRlRV6hc/xByRoAdpBc=",
  );
  assert.equal(toHex(rsaDecrypt(key, ct)), "00060a24182022400123456789abcdef89abcdef");
});

Deno.test("PKCS#1 v1.5 encryption round-trips and is randomised", () => {
  const key = loadPrivateKey(NODE1_KEY_PEM);
  const pub = loadPublicKey(NODE1_CERT_PEM);
  const secret = randomSecret();
  const c1 = rsaEncrypt(pub, secret);
  const c2 = rsaEncrypt(pub, secret);
  assert.equal(c1.length, 128);
  assert.notDeepEqual(c1, c2);
  assert.deepEqual(rsaDecrypt(key, c1), secret);
  // Plaintext limit k - 11 bytes.
  assert.equal(rsaDecrypt(key, rsaEncrypt(pub, new Uint8Array(117))).length, 117);
  assert.throws(() => rsaEncrypt(pub, new Uint8Array(118)));
});

Deno.test("decrypting garbage or with the wrong key throws", () => {
  const key = loadPrivateKey(NODE1_KEY_PEM);
  assert.throws(() => rsaDecrypt(key, new Uint8Array(128).fill(7)), /RSA decryption failed/);
  const ct = rsaEncrypt(loadPublicKey(TEST_CA_CERT_PEM), randomSecret());
  assert.throws(() => rsaDecrypt(key, ct), /RSA decryption failed/);
});

Deno.test("SHA-512 PKCS#1 v1.5 signatures are deterministic and verify only for the right data", () => {
  const ca = loadPrivateKey(TEST_CA_KEY_PEM);
  const caPub = loadPublicKey(TEST_CA_CERT_PEM);
  const sig = rsaSign(ca, Uint8Array.of(1));
  // VECTORS §9: blob of version 1 = 01 ‖ signature of 01.
  assert.equal(
    toHex(sig),
    "89d13a266444841478fc153c732e127f59fbf9d626d457ca08c0f096b866d9eae519b1cb14fc4682feefd9a0bf274f09fa70b99f07553fc50a8e4d85d0493866dda9dc93f9ec391289b2a7a611268016d4d34f39199e3c44e9d112729c895684e09872f2198b946f6a7b070db4b53d3ce06b97eaba7b1f1ea05b2331a05a97a3",
  );
  assert.ok(rsaVerify(caPub, Uint8Array.of(1), sig));
  assert.ok(rsaVerify(publicKeyOf(ca), Uint8Array.of(1), sig));
  assert.ok(!rsaVerify(caPub, Uint8Array.of(2), sig));
  assert.ok(!rsaVerify(loadPublicKey(NODE1_CERT_PEM), Uint8Array.of(1), sig));
  assert.ok(!rsaVerify(caPub, Uint8Array.of(1), sig.slice(1)));
});

Deno.test("HMAC-SHA1 and SHA-1 match the registry chain vector (VECTORS §4)", () => {
  const k0 = fromHex("000102030405060708090a0b0c0d0e0f10111213");
  const mac = hmacSha1(k0, "/getNetworkConfig?cn=0000000000000110");
  assert.equal(btoa(String.fromCharCode(...mac)), "I0dm3tdWrpgoXTdQzGUfQktZC0E=");
  assert.equal(toHex(sha1(k0)), "602c63d2f3d13ca3206cdf204cde24e7d8f4266c");
  assert.equal(toHex(sha1(sha1(k0))), "8f610962f8582709735b1a7964b86202a5e4a9df");
  assert.equal(toHex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assert.equal(digest("sha256", new Uint8Array(0)).length, 32);
});

Deno.test("a peer secret lays out time in µs then the random parts (VECTORS §5)", () => {
  const s = timeSecret(1700000000123456n, fromHex("0123456789abcdef89abcdef"));
  assert.equal(toHex(s), "00060a24182022400123456789abcdef89abcdef");
});

Deno.test("peer secrets generated later compare greater", () => {
  let prev = timeSecret();
  const now = BigInt(Date.now()) * 1000n;
  const a = new DataView(prev.buffer).getBigUint64(0);
  assert.ok(a > now - 10_000_000n && a < now + 10_000_000n, `time part ${a} near ${now}`);
  for (let i = 0; i < 1000; i++) {
    const next = timeSecret();
    assert.equal(compareBytes(prev, next), -1);
    prev = next;
  }
});

Deno.test("random secrets are 20 distinct bytes", () => {
  const a = randomSecret(), b = randomSecret();
  assert.equal(a.length, 20);
  assert.ok(!bytesEqual(a, b));
});

Deno.test("compareBytes orders lexicographically, shorter first on a common prefix", () => {
  assert.equal(compareBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), 0);
  assert.equal(compareBytes(Uint8Array.of(1), Uint8Array.of(1, 0)), -1);
  assert.equal(compareBytes(Uint8Array.of(2), Uint8Array.of(1, 9)), 1);
  assert.ok(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1)));
});

Deno.test("hex helpers round-trip and refuse bad text", () => {
  assert.equal(toHex(fromHex("00ABff")), "00abff");
  assert.throws(() => fromHex("abc"), /hexadecimal/);
  assert.throws(() => fromHex("zz"), /hexadecimal/);
});

Deno.test("key sizes are reported in bits and bytes", () => {
  assert.equal(modulusBits(loadPrivateKey(TEST_CA_KEY_PEM)), 1024);
  assert.equal(modulusBytes(loadPublicKey(TEST_CA_CERT_PEM)), 128);
  assert.equal(modulusBytes(TEST_CA_CERT_PEM), 128);
});

Deno.test("a generated key is PKCS#8 PEM of the requested size and loads back", async () => {
  const pem = await generateRsaKey(1024);
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = loadPrivateKey(pem);
  assert.equal(modulusBits(key), 1024);
  assert.ok(rsaVerify(publicKeyOf(key), Uint8Array.of(5), rsaSign(key, Uint8Array.of(5))));
});

Deno.test("loading garbage or a non-RSA key fails with the source in the message", async () => {
  assert.throws(() => loadPrivateKey("nope", "/etc/re6stnet/cert.key"), /cert\.key/);
  const { privateKey } = await import("node:crypto").then((c) =>
    c.generateKeyPairSync("ec", { namedCurve: "P-256" })
  );
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  assert.throws(() => loadPrivateKey(pem, "k.pem"), /k\.pem is a ec key, re6st needs RSA/);
});
