// RSA through the system's libcrypto (platform/libcrypto.ts) against the built-in code
// (core/registry/rsa.ts): the same signatures byte for byte, the same certificates as
// VECTORS §10, and the fallback when the library is absent.

import assert from "node:assert/strict";
import {
  assembleCertificate,
  createCsr,
  issuedSubject,
  parseCertificate,
  readCsr,
  tbsCertificate,
} from "../../core/cert.ts";
import {
  generateRsaKey,
  loadPrivateKey,
  rsaDecrypt,
  rsaSign,
  spkiDer,
  toHex,
} from "../../core/crypto.ts";
import { memoryLogger } from "../../core/log.ts";
import { builtinRsa, type RsaEngine } from "../../core/registry/rsa.ts";
import {
  libcryptoPrivateKey,
  libcryptoRsa,
  openLibcrypto,
  registryRsa,
} from "../../platform/libcrypto.ts";
import {
  NODE1_CERT_PEM,
  NODE1_KEY_PEM,
  TEST_CA_CERT_PEM,
  TEST_CA_KEY_PEM,
} from "../helpers/vectors.ts";

const caKey = loadPrivateKey(TEST_CA_KEY_PEM);
const pkcs8 = (pem: string) =>
  new Uint8Array(loadPrivateKey(pem).export({ type: "pkcs8", format: "der" }));

async function withEngine(pem: string, fn: (rsa: RsaEngine) => Promise<void>): Promise<void> {
  const rsa = libcryptoRsa(openLibcrypto(), pkcs8(pem));
  try {
    await fn(rsa);
  } finally {
    rsa.close();
  }
}

Deno.test("libcrypto signs byte for byte like the built-in code, 1024 and 2048 bits", async () => {
  const key2048 = await generateRsaKey(2048);
  for (const pem of [TEST_CA_KEY_PEM, key2048]) {
    const builtin = builtinRsa(loadPrivateKey(pem));
    await withEngine(pem, async (rsa) => {
      for (const size of [0, 1, 20, 64, 1000, 5000]) {
        const data = Uint8Array.from({ length: size }, (_, i) => (i * 7 + size) & 0xff);
        const [a, b] = await Promise.all([rsa.sign(data), builtin.sign(data)]);
        assert.equal(toHex(a), toHex(b), `${size} bytes`);
        assert.equal(toHex(a), toHex(rsaSign(pem, data)));
      }
      // Many at once, all right.
      const many = await Promise.all(
        Array.from({ length: 20 }, (_, i) => rsa.sign(Uint8Array.of(i))),
      );
      many.forEach((s, i) => assert.equal(toHex(s), toHex(rsaSign(pem, Uint8Array.of(i)))));
    });
    builtin.close();
  }
});

Deno.test("a certificate signed through libcrypto is node 1's certificate of VECTORS §10", async () => {
  const node1 = parseCertificate(NODE1_CERT_PEM);
  const tbs = tbsCertificate({
    ca: parseCertificate(TEST_CA_CERT_PEM),
    subject: issuedSubject([], 0, "0/16"),
    publicKey: node1.spki,
    serial: 1,
    notBefore: node1.notBefore,
    notAfter: node1.notAfter,
  });
  await withEngine(TEST_CA_KEY_PEM, async (rsa) => {
    assert.equal(assembleCertificate(tbs, await rsa.sign(tbs)).pem, NODE1_CERT_PEM);
  });
});

Deno.test("libcrypto encrypts for node keys, checks CSR signatures and refuses non-RSA keys", async () => {
  const spki = spkiDer(loadPrivateKey(NODE1_KEY_PEM));
  await withEngine(TEST_CA_KEY_PEM, async (rsa) => {
    assert.equal(rsa.keyBits(spki), 1024);
    const secret = Uint8Array.from({ length: 20 }, (_, i) => i);
    const e = rsa.encrypt(spki, secret);
    assert.equal(e.length, 128);
    assert.equal(toHex(rsaDecrypt(NODE1_KEY_PEM, e)), toHex(secret));
    assert.notEqual(toHex(rsa.encrypt(spki, secret)), toHex(e), "PKCS#1 v1.5 padding is random");
    const node = libcryptoPrivateKey(pkcs8(NODE1_KEY_PEM));
    assert.equal(toHex(node.decrypt(e)), toHex(secret));
    assert.throws(() => node.decrypt(new Uint8Array(128)), /RSA decryption failed/);
    node.close();
    const csr = readCsr(createCsr(NODE1_KEY_PEM, [["O", "x"]]));
    assert.ok(rsa.verify(csr.spki, "sha512", csr.info, csr.signature));
    const tampered = csr.info.slice();
    tampered[tampered.length - 1] ^= 1;
    assert.ok(!rsa.verify(csr.spki, "sha512", tampered, csr.signature));
    assert.ok(!rsa.verify(csr.spki, "sha256", csr.info, csr.signature), "another hash");
    assert.ok(!rsa.verify(csr.spki, "nohash", csr.info, csr.signature));
    const ec = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
    ])).publicKey;
    const ecSpki = new Uint8Array(await crypto.subtle.exportKey("spki", ec));
    assert.throws(() => rsa.keyBits(ecSpki), /not an RSA key/);
    assert.throws(() => rsa.keyBits(new Uint8Array(10)), /Cannot load node public key/);
  });
});

Deno.test("a signature asked before the engine closes completes; later ones are refused", async () => {
  const rsa = libcryptoRsa(openLibcrypto(), pkcs8(TEST_CA_KEY_PEM));
  const pending = rsa.sign(Uint8Array.of(1, 2, 3));
  rsa.close();
  rsa.close(); // twice is harmless
  assert.equal(toHex(await pending), toHex(rsaSign(caKey, Uint8Array.of(1, 2, 3))));
  await assert.rejects(rsa.sign(Uint8Array.of(1)), /closed/);
});

Deno.test("without libcrypto the registry falls back to the built-in code and says so", async () => {
  const log = memoryLogger(3);
  const missing = registryRsa(caKey, "/nonexistent/libcrypto.so.3", log);
  assert.match(missing.name, /^built-in/);
  assert.match(
    log.lines.at(-1)!,
    /WARNING RSA operations: built-in .*several times slower: Cannot load \/nonexistent\/libcrypto.so.3/,
  );
  assert.equal(
    toHex(await missing.sign(Uint8Array.of(9))),
    toHex(rsaSign(caKey, Uint8Array.of(9))),
  );
  missing.close();
  const off = registryRsa(caKey, "none", log);
  assert.match(log.lines.at(-1)!, /INFO RSA operations: built-in .*libcrypto disabled/);
  off.close();
  const real = registryRsa(caKey, undefined, log);
  assert.match(log.lines.at(-1)!, /INFO RSA operations: OpenSSL 3\.\S+ .*\(libcrypto\.so\.3\)/);
  real.close();
});
