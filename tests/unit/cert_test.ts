import assert from "node:assert/strict";
import {
  createCa,
  createCsr,
  fingerprint,
  issueCertificate,
  issuedSubject,
  matchesFingerprint,
  networkOfCa,
  parseCertificate,
  parseCsr,
  parseFingerprint,
  splitPemCertificates,
  validateCert,
} from "../../core/cert.ts";
import { networkCidr } from "../../core/addressing.ts";
import { generateRsaKey, loadPrivateKey, publicKeyOf, toHex } from "../../core/crypto.ts";
import { TAG } from "../../core/der.ts";
import {
  NODE1_CERT_PEM,
  NODE1_KEY_PEM,
  TEST_CA_CERT_PEM,
  TEST_CA_KEY_PEM,
} from "../helpers/vectors.ts";

const ca = parseCertificate(TEST_CA_CERT_PEM, "test CA");
const node1 = parseCertificate(NODE1_CERT_PEM, "node 1");
const caKey = loadPrivateKey(TEST_CA_KEY_PEM);
const IN_2027 = new Date("2027-01-01T00:00:00Z");

Deno.test("the test CA parses: serial, network, subject, fingerprints (VECTORS §8)", () => {
  assert.equal(ca.version, 3);
  assert.equal(ca.serial, 0x120010db80042n);
  assert.equal(networkCidr(networkOfCa(ca)), "2001:db8:42::/48");
  assert.equal(ca.cn, "re6st.example.com");
  assert.deepEqual(ca.subject.map((a) => [a.name, a.value]), [
    ["CN", "re6st.example.com"],
    ["emailAddress", "re6st@example.com"],
  ]);
  assert.equal(toHex(ca.sha1), "966322ef2d6e533aaa1a331b5d34f42bf9a33a88");
  assert.equal(
    toHex(fingerprint(ca.der, "sha256")),
    "bb1b91035f7a98f39fdc8671ddcfa4d445f4b6479d65394d506d5c830b8d69ee",
  );
  assert.equal(ca.pem, TEST_CA_CERT_PEM);
  assert.equal(validateCert(ca, ca, { now: IN_2027 }), null);
});

Deno.test("node 1's certificate parses as v1 with serialNumber then CN (VECTORS §10)", () => {
  assert.equal(node1.version, 1);
  assert.equal(node1.serial, 1n);
  assert.equal(node1.cn, "0/16");
  assert.equal(node1.subjectSerial, 0);
  assert.deepEqual(node1.subject.map((a) => [a.name, a.value, a.tag]), [
    ["serialNumber", "0", TAG.PRINTABLE_STRING],
    ["CN", "0/16", TAG.UTF8_STRING],
  ]);
  assert.equal(node1.notBefore.toISOString(), "2026-11-22T00:07:17.000Z");
  assert.equal(node1.notAfter.toISOString(), "2027-11-22T00:07:17.000Z");
  assert.equal(node1.signatureAlgorithm, "1.2.840.113549.1.1.13");
  assert.equal(toHex(node1.sha1), "aefe37f5d9cc745e644db19c66dbae6dd883f341");
  assert.equal(node1.der.length, 460);
});

Deno.test("issuing with node 1's parameters reproduces its certificate byte for byte", () => {
  const issued = issueCertificate({
    ca,
    caKey,
    subject: issuedSubject([], 0, "0/16"),
    publicKey: node1.publicKey,
    serial: 1,
    notBefore: node1.notBefore,
    notAfter: node1.notAfter,
  });
  assert.equal(toHex(issued.der), toHex(node1.der));
  assert.equal(issued.pem, NODE1_CERT_PEM);
});

Deno.test("a registry subject keeps CSR attributes in order, then serialNumber and CN", () => {
  const csr = parseCsr(
    createCsr(NODE1_KEY_PEM, [["O", "Example"], ["emailAddress", "x@example.com"], ["CN", "x"]]),
  );
  const cert = parseCertificate(
    issueCertificate({
      ca,
      caKey: TEST_CA_KEY_PEM,
      subject: issuedSubject(csr.subject, 1, "1/16"),
      publicKey: csr.spki,
      serial: 2n,
      notBefore: new Date("2026-11-22T00:00:00Z"),
      notAfter: new Date("2027-11-22T00:00:00Z"),
    }).der,
  );
  assert.deepEqual(cert.subject.map((a) => [a.name, a.value, a.tag]), [
    ["O", "Example", TAG.UTF8_STRING],
    ["emailAddress", "x@example.com", TAG.IA5_STRING],
    ["serialNumber", "1", TAG.PRINTABLE_STRING],
    ["CN", "1/16", TAG.UTF8_STRING],
  ]);
  assert.equal(cert.version, 1);
  assert.equal(cert.subjectSerial, 1);
  assert.equal(validateCert(cert, ca, { now: IN_2027 }), null);
});

Deno.test("strict validation checks the current time, non-strict ignores expiry (§3.6)", () => {
  assert.equal(validateCert(node1, ca, { now: IN_2027 }), null);
  const in2030 = new Date("2030-01-01T00:00:00Z");
  assert.equal(validateCert(node1, ca, { now: in2030 }), "certificate has expired");
  assert.equal(validateCert(node1, ca, { now: in2030, strict: false }), null);
  const before = new Date("2026-01-01T00:00:00Z");
  assert.equal(validateCert(node1, ca, { now: before }), "certificate is not yet valid");
  assert.equal(
    validateCert(node1, ca, { now: before, strict: false }),
    "certificate is not yet valid",
  );
  assert.equal(
    validateCert(node1, ca, { now: new Date("2040-01-01T00:00:00Z") }),
    "certificate has expired",
  );
});

Deno.test("a certificate signed by another key or from another issuer is refused", async () => {
  const other = parseCertificate(
    (await createCa({
      network: "0010000000000001000011011011100000000000010000110",
      bits: 1024,
      commonName: "re6st.example.com",
      email: "re6st@example.com",
      notBefore: new Date("2026-01-01T00:00:00Z"),
    })).certPem,
  );
  // Same subject as the test CA, different key: the issuer matches but the signature does not.
  assert.equal(
    validateCert(node1, other, { now: IN_2027 }),
    "signature does not verify with the CA key",
  );
  const forged = parseCertificate(
    issueCertificate({
      ca: { subjectDer: node1.subjectDer },
      caKey,
      subject: [["CN", "1/16"]],
      publicKey: node1.spki,
      serial: 9,
      notBefore: node1.notBefore,
      notAfter: node1.notAfter,
    }).der,
  );
  assert.match(validateCert(forged, ca, { now: IN_2027 })!, /^issuer \(serialNumber=0, CN=0\/16\)/);
  const tampered = Uint8Array.from(node1.der);
  tampered[tampered.length - 1] ^= 1;
  assert.equal(
    validateCert(parseCertificate(tampered), ca, { now: IN_2027 }),
    "signature does not verify with the CA key",
  );
});

Deno.test("a CSR round-trips and a tampered one fails its signature check", () => {
  const pem = createCsr(NODE1_KEY_PEM, [["O", "Example"], ["OU", "Lab"], ["C", "FR"]]);
  assert.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
  const csr = parseCsr(pem);
  assert.ok(csr.signatureValid);
  assert.deepEqual(csr.subject.map((a) => [a.name, a.value]), [["O", "Example"], ["OU", "Lab"], [
    "C",
    "FR",
  ]]);
  assert.equal(toHex(csr.spki), toHex(node1.spki));
  const bad = Uint8Array.from(csr.der);
  bad[bad.length - 1] ^= 1;
  assert.equal(parseCsr(bad).signatureValid, false);
  assert.deepEqual(parseCsr(createCsr(NODE1_KEY_PEM, [])).subject, []);
  assert.throws(() => parseCsr("garbage"), /Cannot parse certificate request/);
});

Deno.test("a created CA encodes its network in the serial and signs node certificates", async () => {
  const network = "1111110101000010101010111100110100010010001101000000000000000000";
  const { certPem, keyPem } = await createCa({ network, bits: 1024, days: 30 });
  const newCa = parseCertificate(certPem);
  assert.equal(newCa.serial, 0x1fd42abcd12340000n);
  assert.equal(networkOfCa(newCa), network);
  assert.equal(newCa.version, 3);
  assert.equal(validateCert(newCa, newCa), null);
  const nodeKey = loadPrivateKey(await generateRsaKey(1024));
  const now = new Date();
  const cert = parseCertificate(
    issueCertificate({
      ca: newCa,
      caKey: keyPem,
      subject: [["serialNumber", "3"], ["CN", "6/16"]],
      publicKey: publicKeyOf(nodeKey),
      serial: 7,
      notBefore: now,
      notAfter: new Date(now.getTime() + 86400_000),
    }).der,
  );
  assert.equal(validateCert(cert, newCa), null);
  assert.equal(
    validateCert(cert, ca),
    `issuer (CN=re6st CA) is not the CA (${"CN=re6st.example.com"}, emailAddress=re6st@example.com)`,
  );
});

Deno.test("openssl accepts a created CA, a certificate it issued and a CSR", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { certPem, keyPem } = await createCa({ network: "1111110100000000", bits: 1024 });
    const newCa = parseCertificate(certPem);
    const now = new Date();
    const issued = issueCertificate({
      ca: newCa,
      caKey: keyPem,
      subject: [["O", "Ex"], ["serialNumber", "0"], ["CN", "0/16"]],
      publicKey: node1.spki,
      serial: 1,
      notBefore: now,
      notAfter: new Date(now.getTime() + 365 * 86400_000),
    });
    await Deno.writeTextFile(`${dir}/ca.crt`, certPem);
    await Deno.writeTextFile(`${dir}/cert.crt`, issued.pem);
    await Deno.writeTextFile(`${dir}/req.csr`, createCsr(NODE1_KEY_PEM, [["O", "Ex"]]));
    const run = async (...args: string[]) => {
      const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
        .output();
      return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    };
    assert.match(await run("verify", "-CAfile", `${dir}/ca.crt`, `${dir}/cert.crt`), /: OK/);
    assert.match(await run("req", "-verify", "-noout", "-in", `${dir}/req.csr`), /verif.* OK/i);
    const text = await run("x509", "-noout", "-subject", "-in", `${dir}/cert.crt`);
    assert.match(text, /subject=O\s?=\s?Ex, serialNumber\s?=\s?0, CN\s?=\s?0\/16/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--fingerprint ALG:HEX values are parsed and matched (§3.9)", () => {
  const spec = parseFingerprint("sha1:966322EF2D6E533AAA1A331B5D34F42BF9A33A88");
  assert.ok(matchesFingerprint(ca.der, spec));
  assert.ok(!matchesFingerprint(node1.der, spec));
  assert.ok(matchesFingerprint(
    ca.der,
    parseFingerprint("sha256:bb1b91035f7a98f39fdc8671ddcfa4d445f4b6479d65394d506d5c830b8d69ee"),
  ));
  assert.equal(fingerprint(ca.der, "sha3_256").length, 32);
  assert.throws(() => parseFingerprint("sha1:abcd"), /20 bytes, got 2/);
  assert.throws(() => parseFingerprint("nohash:abcd"), /Unknown hash algorithm nohash/);
  assert.throws(() => parseFingerprint("966322ef"), /ALG:HEX/);
  assert.throws(() => parseFingerprint("sha1:zz"), /hexadecimal/);
});

Deno.test("garbage certificates are reported with their source", () => {
  assert.throws(() => parseCertificate("nope", "/etc/re6stnet/ca.crt"), /ca\.crt.*No PEM/);
  assert.throws(() => parseCertificate(node1.der.slice(0, 100), "peer 6/16"), /peer 6\/16/);
  assert.deepEqual(splitPemCertificates(TEST_CA_CERT_PEM + NODE1_CERT_PEM).map((d) => d.length), [
    ca.der.length,
    node1.der.length,
  ]);
});

Deno.test("DER integers and times round-trip, including 129-bit serials and years past 2049", async () => {
  const { integer, readInteger, readTlv, readTime, time } = await import("../../core/der.ts");
  assert.equal(toHex(integer(0)), "020100");
  assert.equal(toHex(integer(0x80)), "02020080");
  assert.equal(toHex(integer(-129)), "0202ff7f");
  const big = (1n << 128n) | 5n;
  assert.equal(readInteger(readTlv(integer(big))), big);
  const d2049 = new Date("2049-12-31T23:59:59Z"), d2050 = new Date("2050-01-01T00:00:00Z");
  assert.equal(time(d2049)[0], TAG.UTC_TIME);
  assert.equal(time(d2050)[0], TAG.GENERALIZED_TIME);
  assert.equal(readTime(readTlv(time(d2050))).getTime(), d2050.getTime());
  assert.equal(readTime(readTlv(time(d2049))).getTime(), d2049.getTime());
  const issued = parseCertificate(
    issueCertificate({
      ca,
      caKey,
      subject: [["CN", "0/16"]],
      publicKey: node1.spki,
      serial: big,
      notBefore: d2049,
      notAfter: d2050,
    }).der,
  );
  assert.equal(issued.serial, big);
  assert.equal(issued.notAfter.getTime(), d2050.getTime());
});
