import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { fromHex, loadPrivateKey, rsaDecrypt, rsaEncrypt, toHex } from "../../core/crypto.ts";
import { BABEL_DEFAULT } from "../../core/constants.ts";
import {
  buildDocument,
  canonicalConfig,
  lastConfigText,
  pythonJson,
  rotateBabelKeys,
} from "../../core/registry/netconfig.ts";
import {
  BadTargetError,
  parseTarget,
  quotePlus,
  requestTarget,
  unquotePlus,
} from "../../core/registry/query.ts";
import { isAuthorizedOrigin } from "../../core/registry/rpc.ts";
import { SessionTable } from "../../core/registry/sessions.ts";
import { decodeRelay, encodeRelay } from "../../core/registry/relay.ts";
import { NODE1_CERT_PEM, NODE1_KEY_PEM } from "../helpers/vectors.ts";
import { b64 } from "../helpers/registry.ts";

Deno.test("parses targets strictly: one leading slash, fields with '=', last value wins", () => {
  assert.deepEqual(parseTarget("/getCa"), { method: "getCa", params: new Map() });
  assert.deepEqual(parseTarget("/getCa?"), { method: "getCa", params: new Map() });
  const p = parseTarget("/m?a=1&b=&a=x+y%2Fz%0A");
  assert.equal(p.method, "m");
  assert.deepEqual([...p.params], [["a", "x y/z\n"], ["b", ""]]);
  for (const bad of ["getCa", "//getCa", "/a/b", "/m?a=1&&b=2", "/m?a", "/m?a=1&"]) {
    assert.throws(() => parseTarget(bad), BadTargetError, bad);
  }
});

Deno.test("unquotes like Python: bad escapes kept, UTF-8 decoded", () => {
  assert.equal(unquotePlus("%zz%4"), "%zz%4");
  assert.equal(unquotePlus("%C3%A9+%41"), "é A");
  assert.equal(unquotePlus("%ff"), "\ufffd");
});

Deno.test("session chain matches VECTORS §4 and refuses replays and wrong MACs", () => {
  const s = new SessionTable();
  const prefix = "0000000000000110";
  assert.deepEqual(s.check(prefix, "/x", new Uint8Array(20)), { ok: false, status: 401 });
  s.hello(prefix, fromHex("000102030405060708090a0b0c0d0e0f10111213"), 10);
  const mac1 = Uint8Array.from(atob("I0dm3tdWrpgoXTdQzGUfQktZC0E="), (c) => c.charCodeAt(0));
  const t1 = "/getNetworkConfig?cn=0000000000000110";
  const r1 = s.check(prefix, t1, mac1);
  assert.ok(r1.ok);
  assert.equal(toHex(r1.responseKey), "602c63d2f3d13ca3206cdf204cde24e7d8f4266c");
  assert.equal(toHex(s.entries(prefix)[0].key), "8f610962f8582709735b1a7964b86202a5e4a9df");
  // Replaying the same request is refused: the chain moved on.
  assert.deepEqual(s.check(prefix, t1, mac1), { ok: false, status: 400 });
  const mac2 = Uint8Array.from(atob("WlyEjWenBP2BLlBBIPN5qcy80GA="), (c) => c.charCodeAt(0));
  const r2 = s.check(prefix, "/renewCertificate?cn=0000000000000110", mac2);
  assert.ok(r2.ok);
  assert.equal(toHex(r2.responseKey), "78b4d9309be4bbd09db78495930b888c465111c6");
  assert.equal(toHex(s.entries(prefix)[0].key), "a7307c1f89b146a74ff0540b5d8266cc047f7391");
});

Deno.test("a third party's hello does not break an established chain", () => {
  const s = new SessionTable();
  const k0 = fromHex("000102030405060708090a0b0c0d0e0f10111213");
  s.hello("1", k0, 10);
  s.hello("1", new Uint8Array(20).fill(7), 5); // attacker
  assert.equal(s.entries("1").length, 2);
  const mac = Uint8Array.from(atob("I0dm3tdWrpgoXTdQzGUfQktZC0E="), (c) => c.charCodeAt(0));
  const r = s.check("1", "/getNetworkConfig?cn=0000000000000110", mac);
  assert.ok(r.ok && r.protocol === 10);
  assert.equal(s.entries("1").length, 1);
});

Deno.test("private origins: peer and whole X-Forwarded-For must be authorized", () => {
  const ok = ["127.0.0.1", "::1"];
  assert.equal(isAuthorizedOrigin(ok, "::ffff:127.0.0.1", null), true);
  assert.equal(isAuthorizedOrigin(ok, "::1", null), true);
  assert.equal(isAuthorizedOrigin(ok, "10.0.0.1", null), false);
  assert.equal(isAuthorizedOrigin(ok, "127.0.0.1", "127.0.0.1"), true);
  assert.equal(isAuthorizedOrigin(ok, "127.0.0.1", "10.0.0.1"), false);
  assert.equal(isAuthorizedOrigin(ok, "127.0.0.1", "127.0.0.1, ::1"), false);
});

Deno.test("serialises JSON like Python's json.dumps", () => {
  assert.equal(
    pythonJson({ b: [1, 2], a: "é", c: false }, true),
    '{"a": "\\u00e9", "b": [1, 2], "c": false}',
  );
});

Deno.test("builds the VECTORS §12 document: keys, version, encrypted Babel key", () => {
  const opts = {
    minProtocol: 1,
    clientCount: 10,
    maxClients: 20,
    tunnelRefresh: 300,
    hello: 15,
    encrypt: false,
    ipv4: { network: "10.42.0.0/16", sublen: 8 },
  };
  const canonical = canonicalConfig(opts, "0000000000000000", []);
  const version = Uint8Array.from(
    atob(
      "AYnROiZkRIQUePwVPHMuEn9Z+/nWJtRXygjA8Ja4Ztnq5RmxyxT8RoL+79mgvydPCfpwuZ8HVT/FCo5NhdBJOGbdqdyT+ew5Eomyp6YRJoAW1NNPORmePETp0RJynIlWhOCYcvIZi5RvansHDbS1PTzga5fqunsfHqBbIzGgWpej",
    ),
    (c) => c.charCodeAt(0),
  );
  const key = fromHex("24f31b3122e7d23b9d496247904b61e4");
  const body = buildDocument(
    canonical,
    version,
    { h0: key, h1: null, h2: null },
    { validUntil: null, keySwitchAt: null },
    (data) => rsaEncrypt(NODE1_CERT_PEM, data),
  );
  assert.deepEqual([...body.subarray(0, 2)], [0x78, 0x9c]);
  const doc = JSON.parse(new TextDecoder().decode(inflateSync(body)));
  assert.deepEqual(Object.keys(doc), [
    "babel_default",
    "crl",
    "protocol",
    "registry_prefix",
    "ipv4",
    "ipv4_sublen",
    "client_count",
    "encrypt",
    "hello",
    "max_clients",
    "min_protocol",
    "tunnel_refresh",
    "",
    "version",
    "babel_hmac_sign",
  ]);
  assert.equal(doc.babel_default, BABEL_DEFAULT);
  assert.equal(doc.version, b64(version));
  assert.deepEqual(doc[""], ["version"]);
  const sign = Uint8Array.from(atob(doc.babel_hmac_sign), (c) => c.charCodeAt(0));
  assert.equal(toHex(rsaDecrypt(loadPrivateKey(NODE1_KEY_PEM), sign)), toHex(key));
  assert.equal(
    lastConfigText(canonical),
    `{"babel_default": "${BABEL_DEFAULT}", "client_count": 10, "crl": [], "encrypt": false, ` +
      `"hello": 15, "ipv4": "10.42.0.0/16", "ipv4_sublen": 8, "max_clients": 20, ` +
      `"min_protocol": 1, "protocol": 10, "registry_prefix": "0000000000000000", ` +
      `"tunnel_refresh": 300}`,
  );
});

Deno.test('publishes an empty accept key as "" (quirk Q1)', () => {
  const canonical = canonicalConfig(
    {
      minProtocol: 1,
      clientCount: 10,
      maxClients: 20,
      tunnelRefresh: 300,
      hello: 15,
      encrypt: false,
    },
    "0",
    [3, 1],
  );
  const body = buildDocument(
    canonical,
    Uint8Array.of(0),
    {
      h0: null,
      h1: new Uint8Array(16),
      h2: new Uint8Array(),
    },
    { validUntil: 4600, keySwitchAt: 1060.5 },
    (data) => rsaEncrypt(NODE1_CERT_PEM, data),
  );
  const doc = JSON.parse(new TextDecoder().decode(inflateSync(body)));
  assert.equal(doc.babel_hmac_accept, "");
  assert.equal(typeof doc.babel_hmac_sign, "string");
  // Times are numbers (never in "", which lists the base64 values).
  assert.deepEqual([doc.valid_until, doc.babel_key_switch_at, doc[""]], [4600, 1060.5, [
    "version",
  ]]);
  assert.deepEqual(doc.crl, [1, 3]);
});

Deno.test("updateHMAC rotates keys as in VECTORS §14", () => {
  let n = 0;
  const fresh = () => new Uint8Array(16).fill(++n);
  const name = (k: Uint8Array | null) => (k === null ? "-" : k.length ? `K${k[0]}` : "empty");
  const state = (k: { h0: Uint8Array | null; h1: Uint8Array | null; h2: Uint8Array | null }) =>
    [name(k.h0), name(k.h1), name(k.h2)].join(",");
  let keys = {
    h0: fresh() as Uint8Array | null,
    h1: null as Uint8Array | null,
    h2: null as Uint8Array | null,
  };
  const seen: string[] = [];
  const until: (number | null)[] = [];
  const switchAt: (number | null)[] = [];
  for (let i = 0; i < 5; i++) {
    const r = rotateBabelKeys(keys, 1000, fresh, 60);
    keys = r.keys;
    seen.push(state(keys));
    until.push(r.validUntil);
    switchAt.push(r.keySwitchAt);
  }
  assert.deepEqual(seen, ["K1,K2,-", "-,K2,K1", "K2,-,-", "K2,K3,-", "-,K3,K2"]);
  assert.deepEqual(until, [4600, null, null, 4600, null]);
  // Phase 2 only: every node switches signing 60 s after the call.
  assert.deepEqual(switchAt, [null, 1060, null, null, 1060]);
  const r = rotateBabelKeys({ h0: null, h1: null, h2: null }, 0, fresh);
  assert.equal(state(r.keys), "-,K4,empty");
});

Deno.test("relay datagrams follow VECTORS §6", () => {
  assert.equal(toHex(encodeRelay("0000000000000110", 1)), "303030303030303030303030303131300001");
  const answer = fromHex(
    "30303030303030303030303030313130000131302e302e302e312c313139342c7564703b31302e302e302e312c313139342c746370",
  );
  const m = decodeRelay(answer)!;
  assert.equal(m.prefix, "0000000000000110");
  assert.equal(m.code, 1);
  assert.equal(new TextDecoder().decode(m.payload), "10.0.0.1,1194,udp;10.0.0.1,1194,tcp");
  assert.equal(decodeRelay(fromHex("0001")), null);
  assert.equal(decodeRelay(fromHex("3200")), null);
  assert.equal(decodeRelay(fromHex("300001"))?.payload.length, 0);
});

Deno.test("quotePlus encodes like Python's quote_plus", () => {
  assert.deepEqual(quotePlus("a/b,c=d\ne f"), "a%2Fb%2Cc%3Dd%0Ae+f");
  assert.deepEqual(quotePlus("AZaz09_.-~"), "AZaz09_.-~");
  assert.deepEqual(quotePlus("*!'()+&é"), "%2A%21%27%28%29%2B%26%C3%A9");
});

Deno.test("request targets keep the declared parameter order, empty values included", () => {
  assert.deepEqual(requestTarget("getCa"), "/getCa");
  assert.deepEqual(
    requestTarget("requestCertificate", [["token", ""], ["req", "A B"], ["location", ""], [
      "ip",
      "",
    ]]),
    "/requestCertificate?token=&req=A+B&location=&ip=",
  );
});

Deno.test("a built request target parses back to its method and parameters", () => {
  const t = parseTarget(requestTarget("requestToken", [["email", "a b@é.example"], ["x", "&=+"]]));
  assert.equal(t.method, "requestToken");
  assert.deepEqual([...t.params], [["email", "a b@é.example"], ["x", "&=+"]]);
});
