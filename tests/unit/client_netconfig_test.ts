// decodeNetworkConfig: node-side decoding rules of PROTOCOL.md §4.7 on the VECTORS.md §12 document.

import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { decodeNetworkConfig, NetworkConfigError } from "../../core/netconfig/document.ts";
import { rsaEncrypt, toHex } from "../../core/crypto.ts";
import { NODE1_CERT_PEM, NODE1_KEY_PEM } from "../helpers/vectors.ts";

const VERSION1 =
  "AYnROiZkRIQUePwVPHMuEn9Z+/nWJtRXygjA8Ja4Ztnq5RmxyxT8RoL+79mgvydPCfpwuZ8HVT/FCo5NhdBJOGbdqdyT+ew5Eomyp6YRJoAW1NNPORmePETp0RJynIlWhOCYcvIZi5RvansHDbS1PTzga5fqunsfHqBbIzGgWpej";
const SIGN =
  "juLClR5YK3WtQJw+oxe1Kx3Cj3HqT//ksJsY1YjfEkeHs7pFBVqnfBEyZfZuVYpQGqFBH6CDYap4eWhThSvltgsENbvPwP4ghp1WdVPf9kt2IZ8qXnrEHV1cYP4gw6+brZ0BGi36jBQX5O4bRZCp1S9oyymmrfp1urfjPfC3Ln0=";

const VECTOR_DOC = {
  babel_default: "max-rtt-penalty 5000 rtt-max 500 rtt-decay 125",
  crl: [],
  protocol: 10,
  registry_prefix: "0000000000000000",
  ipv4: "10.42.0.0/16",
  ipv4_sublen: 8,
  client_count: 10,
  encrypt: false,
  hello: 15,
  max_clients: 20,
  min_protocol: 1,
  tunnel_refresh: 300,
  "": ["version"],
  version: VERSION1,
  babel_hmac_sign: SIGN,
};

const zjson = (doc: unknown) => new Uint8Array(deflateSync(JSON.stringify(doc)));

Deno.test("decodes the VECTORS §12 document: version as bytes, Babel key decrypted", async () => {
  const params = await decodeNetworkConfig(zjson(VECTOR_DOC), NODE1_KEY_PEM);
  assert.ok(!("" in params));
  const version = params.version as Uint8Array;
  assert.equal(version.length, 129);
  assert.equal(toHex(version.subarray(0, 4)), "0189d13a");
  assert.equal(toHex(params.babel_hmac_sign as Uint8Array), "24f31b3122e7d23b9d496247904b61e4");
  assert.equal(params.ipv4_sublen, 8);
  assert.deepEqual(params.crl, []);
  assert.equal(params.encrypt, false);
});

Deno.test("keeps unknown keys and an empty Babel accept key", async () => {
  const params = await decodeNetworkConfig(
    zjson({ ...VECTOR_DOC, babel_hmac_accept: "", future: { a: [1] }, valid_until: 1.5 }),
    NODE1_KEY_PEM,
  );
  assert.equal(params.babel_hmac_accept, "");
  assert.deepEqual(params.future, { a: [1] });
  assert.equal(params.valid_until, 1.5);
});

Deno.test("refuses what is not zlib JSON, bad base64, wrong types and undecryptable keys", async () => {
  const bad: Uint8Array[] = [
    new TextEncoder().encode("{}"),
    zjson([1, 2]),
    zjson({ ...VECTOR_DOC, version: "!!" }),
    zjson({ ...VECTOR_DOC, crl: ["1"] }),
    zjson({ ...VECTOR_DOC, "": "version" }),
    zjson({ ...VECTOR_DOC, babel_hmac_sign: btoa("x".repeat(128)) }),
    // A 20-byte key is not a Babel key.
    zjson({
      ...VECTOR_DOC,
      babel_hmac_sign: btoa(
        String.fromCharCode(...rsaEncrypt(NODE1_CERT_PEM, new Uint8Array(20))),
      ),
    }),
  ];
  for (const body of bad) {
    await assert.rejects(decodeNetworkConfig(body, NODE1_KEY_PEM), NetworkConfigError);
  }
});
