import assert from "node:assert/strict";
import { createCa } from "../../core/cert.ts";
import { generateRsaKey } from "../../core/crypto.ts";
import { IdentityError, loadIdentity, type ReadFile } from "../../core/node/identity.ts";
import {
  nodeCertPem,
  nodeKeyPem,
  TEST_CA_CERT_PEM,
  TEST_CA_KEY_PEM,
} from "../helpers/node_fixtures.ts";

const FILES = {
  ca: "/etc/re6stnet/ca.crt",
  cert: "/etc/re6stnet/cert.crt",
  key: "/etc/re6stnet/cert.key",
};

function reader(map: Record<string, string | Error>): ReadFile {
  return (path) => {
    const v = map[path];
    if (v === undefined) throw Object.assign(new Error("nope"), { name: "NotFound" });
    if (v instanceof Error) throw v;
    return new TextEncoder().encode(v);
  };
}

async function goodFiles(certOpts: Parameters<typeof nodeCertPem>[1] = {}) {
  const key = await nodeKeyPem();
  return {
    [FILES.ca]: TEST_CA_CERT_PEM,
    [FILES.cert]: nodeCertPem(key, certOpts),
    [FILES.key]: key,
  } as Record<string, string | Error>;
}

function loadError(map: Record<string, string | Error>, now = new Date()): IdentityError {
  try {
    loadIdentity(FILES, reader(map), now);
  } catch (e) {
    assert.ok(e instanceof IdentityError, `expected an IdentityError, got ${e}`);
    return e;
  }
  assert.fail("the identity loaded");
}

Deno.test("derives network, prefix, node IP and subnet from the CA and the certificate", async () => {
  const id = loadIdentity(FILES, reader(await goodFiles()), new Date());
  assert.equal(id.networkCidr, "2001:db8:42::/48");
  assert.equal(id.cn, "6/16");
  assert.equal(id.prefix, "0000000000000110");
  assert.equal(id.ip, "2001:db8:42:6::1");
  assert.equal(id.subnet, "2001:db8:42:6::/64");
  assert.equal(id.subnetLength, 64);
  assert.equal(id.subjectSerial, 1);
  assert.equal(id.expired, false);
});

Deno.test("a missing certificate stops start-up with one line naming the file", async () => {
  const map = await goodFiles();
  delete map[FILES.cert];
  const e = loadError(map);
  assert.equal(e.message, `Cannot load certificate "${FILES.cert}": no such file`);
  assert.equal(e.message.includes("\n"), false);
});

Deno.test("an unreadable key names the key file and says permission denied", async () => {
  const map = await goodFiles();
  map[FILES.key] = Object.assign(new Error("EACCES"), { name: "PermissionDenied" });
  assert.equal(loadError(map).message, `Cannot load private key "${FILES.key}": permission denied`);
});

Deno.test("a CA file that is not a certificate names the CA file", async () => {
  const map = await goodFiles();
  map[FILES.ca] = "hello";
  const e = loadError(map);
  assert.match(e.message, /^Cannot load CA certificate "\/etc\/re6stnet\/ca.crt": not a PEM/);
});

Deno.test("an expired certificate is accepted so that it can be renewed", async () => {
  const now = new Date();
  const ca = await createCa({
    network: "001000000000000100001101101110000000000001000010",
    keyPem: TEST_CA_KEY_PEM,
    notBefore: new Date(now.getTime() - 30 * 86400_000),
  });
  const key = await nodeKeyPem();
  const map = {
    [FILES.ca]: ca.certPem,
    [FILES.cert]: nodeCertPem(key, {
      caPem: ca.certPem,
      notBefore: new Date(now.getTime() - 10 * 86400_000),
      notAfter: new Date(now.getTime() - 86400_000),
    }),
    [FILES.key]: key,
  };
  const id = loadIdentity(FILES, reader(map), now);
  assert.equal(id.expired, true);
  assert.equal(id.cn, "6/16");
});

Deno.test("a certificate that is not yet valid is refused", async () => {
  const map = await goodFiles({ notBefore: new Date(Date.now() + 86400_000) });
  assert.match(loadError(map).message, /cert.crt": certificate is not yet valid$/);
});

Deno.test("a certificate from another CA is refused as foreign, naming the certificate", async () => {
  const other = await createCa({
    network: "0010000000000001000011011011100000000000010000100",
    bits: 1024,
  });
  const map = await goodFiles({ caPem: other.certPem, caKeyPem: other.keyPem });
  const e = loadError(map);
  assert.match(
    e.message,
    /^Cannot load certificate "\/etc\/re6stnet\/cert.crt": not issued by the CA/,
  );
});

Deno.test("a key that does not match the certificate names the key file", async () => {
  const map = await goodFiles();
  map[FILES.key] = await generateRsaKey(1024);
  assert.equal(
    loadError(map).message,
    `Cannot load private key "${FILES.key}": does not match the certificate "${FILES.cert}"`,
  );
});

Deno.test("a certificate whose CN is not a node prefix is refused", async () => {
  const map = await goodFiles({ cn: "router.example.com" });
  assert.match(
    loadError(map).message,
    /common name "router.example.com" is not a re6st node prefix/,
  );
});

Deno.test("a key of another size than the CA key is refused", async () => {
  const key = await generateRsaKey(2048);
  const map = {
    [FILES.ca]: TEST_CA_CERT_PEM,
    [FILES.cert]: nodeCertPem(key, { caKeyPem: TEST_CA_KEY_PEM }),
    [FILES.key]: key,
  };
  assert.match(loadError(map).message, /2048-bit key, but the CA key has 1024 bits/);
});
