import assert from "node:assert/strict";
import {
  compareVersions,
  nextVersionBlob,
  signVersion,
  verifyVersion,
  versionOf,
} from "../../core/netconfig/version.ts";
import {
  decodeMacHeader,
  encodeMacHeader,
  macMatches,
  nextKeys,
  requestMac,
  responseMac,
} from "../../core/registry/hmac.ts";
import { fromHex, loadPrivateKey, loadPublicKey, toHex } from "../../core/crypto.ts";
import { NODE1_KEY_PEM, TEST_CA_CERT_PEM, TEST_CA_KEY_PEM } from "../helpers/vectors.ts";

const caKey = loadPrivateKey(TEST_CA_KEY_PEM);
const caPub = loadPublicKey(TEST_CA_CERT_PEM);
const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const toB64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

// VECTORS.md §9
const BLOBS: [number, string, number, string][] = [
  [
    1,
    "01",
    129,
    "AYnROiZkRIQUePwVPHMuEn9Z+/nWJtRXygjA8Ja4Ztnq5RmxyxT8RoL+79mgvydPCfpwuZ8HVT/FCo5NhdBJOGbdqdyT+ew5Eomyp6YRJoAW1NNPORmePETp0RJynIlWhOCYcvIZi5RvansHDbS1PTzga5fqunsfHqBbIzGgWpej",
  ],
  [
    2,
    "02",
    129,
    "AqscPgd/xFIh1DPNbhXTACDbYVXuv5YXCoGFYt+cfhi+85G9pnufY3C3ZydfgcCdtpx2d0ggS6MHXTdr3AIHQH3qTbJOOrPrz1po4tF8NPPuK9HhSRCd9Pp86p5DeUyLezspwFy+Pdgkw+hyaFdPpPnvF0NpbxGcU3OqR2qgzS0n",
  ],
  [
    31,
    "1f",
    129,
    "H4z1+hUuF05qihZn2hs7Q8iQjJnzMLF/RyCM8yOMYBGFa8+nVB98lu4e0WC/e3l8QzzG6fAgeXwmK59S9iyFUyGKCns+9CG7QW5mLWTozpLChqqnC4fn9T68HiuWRLIoSjT9o0VUjgsfCNbzuoEr/jZzNgDEU9QUGMb3GET/vpye",
  ],
  [
    32,
    "2000",
    130,
    "IAApjTa4GMqq6zWSiNZTET6914PPWB8oob4hImYq3M2IqB0xW6DMwIJ6YvZ2jYpNGz/aTDnjucs4OivLjZ9RRiqtsZ1dd9KEwIl+bRF+ralwurv4OaeIj3UVcQtHxJx4pAgmB+6T+arfAip2h1pLask9m8uC2RFnJKcmQls5B0JTnQ==",
  ],
  [
    1000,
    "23c8",
    130,
    "I8irJ9GOQI/GX4DpcdVz5u2B/6z5QGi7maWFJzd2Zb9dy7WpG3Eys1ZD0BMa7h6dVDcHGnVSKimcTolM1qQhapxr31AncFOtt0N4sF8OGA34JQN+SSMcH5TsiYW238UjHpRpJJDqLRSAJyTzd4TVvRqATvsUrvGI1AJ+5vN+cYiKtg==",
  ],
];

for (const [version, packed, length, blob] of BLOBS) {
  Deno.test(`version ${version} signs to the VECTORS §9 blob and verifies`, () => {
    const signed = signVersion(caKey, version);
    assert.equal(signed.length, length);
    assert.equal(toHex(signed.subarray(0, packed.length / 2)), packed);
    assert.equal(toB64(signed), blob);
    assert.equal(verifyVersion(caPub, b64(blob)), BigInt(version));
    assert.equal(versionOf(b64(blob)), BigInt(version));
  });
}

Deno.test("blobs order by version when compared byte-wise", () => {
  const blobs = BLOBS.map(([, , , b]) => b64(b));
  for (let i = 1; i < blobs.length; i++) {
    assert.ok(compareVersions(blobs[i - 1], blobs[i]) < 0);
    assert.ok(compareVersions(blobs[i], blobs[i - 1]) > 0);
  }
  assert.equal(compareVersions(blobs[0], signVersion(caKey, 1)), 0);
});

Deno.test("short, tampered or foreign-signed blobs do not verify", () => {
  const blob = b64(BLOBS[0][3]);
  assert.equal(verifyVersion(caPub, new Uint8Array(0)), null);
  assert.equal(verifyVersion(caPub, Uint8Array.of(1)), null);
  assert.equal(verifyVersion(caPub, Uint8Array.of(0x20, 0)), null);
  const changed = Uint8Array.from(blob);
  changed[0] = 2; // claims version 2 with version 1's signature
  assert.equal(verifyVersion(caPub, changed), null);
  assert.equal(verifyVersion(caPub, blob.subarray(0, 100)), null);
  assert.equal(verifyVersion(caPub, signVersion(loadPrivateKey(NODE1_KEY_PEM), 1)), null);
  assert.equal(versionOf(Uint8Array.of(0x21)), null);
});

Deno.test("the version after a fresh registry's unsigned 00 is the signed version 1", () => {
  assert.equal(toB64(nextVersionBlob(Uint8Array.of(0), caKey)), BLOBS[0][3]);
  assert.equal(toB64(nextVersionBlob(b64(BLOBS[2][3]), caKey)), BLOBS[3][3]);
  assert.throws(() => nextVersionBlob(new Uint8Array(0), caKey), /truncated/);
});

// VECTORS.md §4
Deno.test("the registry HMAC chain follows VECTORS §4 over two calls", () => {
  const k0 = fromHex("000102030405060708090a0b0c0d0e0f10111213");
  assert.equal(
    encodeMacHeader(requestMac(k0, "/getNetworkConfig?cn=0000000000000110")),
    "I0dm3tdWrpgoXTdQzGUfQktZC0E=",
  );
  const step1 = nextKeys(k0);
  assert.equal(toHex(step1.k1), "602c63d2f3d13ca3206cdf204cde24e7d8f4266c");
  assert.equal(encodeMacHeader(responseMac(step1.k1, "BODY1")), "ntJdWPU9VP6Ib5GAIzNwYk9hpG0=");
  assert.equal(toHex(step1.next), "8f610962f8582709735b1a7964b86202a5e4a9df");

  const k = step1.next;
  assert.equal(
    encodeMacHeader(requestMac(k, "/renewCertificate?cn=0000000000000110")),
    "WlyEjWenBP2BLlBBIPN5qcy80GA=",
  );
  const step2 = nextKeys(k);
  assert.equal(toHex(step2.k1), "78b4d9309be4bbd09db78495930b888c465111c6");
  assert.equal(
    encodeMacHeader(responseMac(step2.k1, new Uint8Array(0))),
    "AiYY5NS07SfZ42Lz6DxbkfE1MPc=",
  );
  assert.equal(toHex(step2.next), "a7307c1f89b146a74ff0540b5d8266cc047f7391");
});

Deno.test("Re6stHMAC header values are checked exactly", () => {
  const mac = fromHex("602c63d2f3d13ca3206cdf204cde24e7d8f4266c");
  const header = encodeMacHeader(mac);
  assert.equal(header.length, 28);
  assert.ok(macMatches(header, mac));
  assert.ok(!macMatches(header, mac.slice(1)));
  assert.ok(!macMatches(null, mac));
  assert.ok(!macMatches("!!!", mac));
  assert.equal(decodeMacHeader("not base64!"), null);
});
