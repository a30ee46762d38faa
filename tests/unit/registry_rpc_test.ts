import { manualClock } from "../../core/clock.ts";
// The registry RPC handler in process (no HTTP): every method, status codes, sessions.

import assert from "node:assert/strict";
import { cnFromPrefix } from "../../core/addressing.ts";
import { formatName, parseCertificate } from "../../core/cert.ts";
import { decodeNetworkConfig } from "../../core/netconfig/document.ts";
import { treeRows } from "../../core/registry/allocation.ts";
import { RegistryFatalError } from "../../core/registry/registry.ts";
import {
  localRegistry,
  localSession,
  nodeCsr,
  registryFiles,
  target,
} from "../helpers/registry.ts";

const dec = new TextDecoder();

async function setup(
  extra: Parameters<typeof registryFiles>[0] = {},
  opts: Parameters<typeof localRegistry>[1] = {},
) {
  const files = await registryFiles(extra);
  const local = localRegistry(files, opts);
  return {
    files,
    local,
    async issue(i = 0, subject: [string, string][] = [], token = "") {
      const { csr } = await nodeCsr(i, subject);
      const r = await local.rpc(target("requestCertificate", [["token", token], ["req", csr]]));
      return r;
    },
    snapshot() {
      const db = local.registry.db.sql;
      return JSON.stringify(
        ["cert", "config", "token", "crl"].map((t) =>
          db.prepare(`SELECT * FROM ${t} ORDER BY 1`).all().map((r) => ({ ...r }))
        ),
        (_k, v) => v instanceof Uint8Array ? [...v] : typeof v === "bigint" ? String(v) : v,
      );
    },
    async [Symbol.asyncDispose]() {
      await local.close();
      await files.cleanup();
    },
  };
}

Deno.test("issues v1 certificates like the reference and makes the first one the registry node (VECTORS §10)", async () => {
  await using t = await setup();
  const r1 = await t.issue(0);
  assert.equal(r1.status, 200);
  const c1 = parseCertificate(dec.decode(r1.bodyBytes));
  assert.equal(c1.version, 1);
  assert.equal(c1.serial, 1n);
  assert.equal(formatName(c1.subject), "serialNumber=0, CN=0/16");
  assert.equal(c1.notAfter.getTime() - c1.notBefore.getTime(), 365 * 86400_000);
  assert.equal(t.local.registry.registryPrefix, "0000000000000000");
  assert.equal(t.local.registry.versionNumber(), 1);
  const r2 = await t.issue(1, [["O", "Example"], ["emailAddress", "x@example.com"]]);
  const c2 = parseCertificate(dec.decode(r2.bodyBytes));
  assert.equal(c2.serial, 2n);
  assert.equal(
    formatName(c2.subject),
    "O=Example, emailAddress=x@example.com, serialNumber=1, CN=1/16",
  );
  assert.equal(t.local.registry.versionNumber(), 1);
});

Deno.test("hello and getNetworkConfig give a document the node decodes, with a valid MAC", async () => {
  await using t = await setup({ ipv4: { network: "10.42.0.0/16", sublen: 8 } });
  await t.issue(0);
  const { key, csr: _ } = await nodeCsr(0);
  const s = localSession(t.local, "0000000000000000", key, t.files.caPem);
  assert.equal(await s.hello(), 200);
  const r = await s.call("getNetworkConfig");
  assert.equal(r.status, 200);
  assert.ok(r.macOk);
  const params = await decodeNetworkConfig(r.body, key);
  assert.equal(params.registry_prefix, "0000000000000000");
  assert.equal(params.ipv4, "10.42.0.0/16");
  assert.equal(params.max_clients, 20);
  assert.ok(params.babel_hmac_sign instanceof Uint8Array);
  assert.equal((params.version as Uint8Array)[0], 1);
  const dh = await s.call("getDh");
  assert.ok(dh.macOk);
  assert.match(dec.decode(dh.body), /BEGIN DH PARAMETERS/);
});

Deno.test("sessions: replay and wrong MAC get 400, unknown prefix 401, missing header 400", async () => {
  await using t = await setup();
  await t.issue(0);
  const { key } = await nodeCsr(0);
  const s = localSession(t.local, "0000000000000000", key, t.files.caPem);
  const noSession = await t.local.rpc(target("getNetworkConfig", [["cn", "0000000000000000"]]), {
    Re6stHMAC: "A".repeat(27) + "=",
  });
  assert.equal(noSession.status, 401);
  await s.hello();
  const first = await s.call("getDh");
  assert.equal(first.status, 200);
  const replay = await s.sendSigned(first.target, first.mac);
  assert.equal(replay.status, 400);
  await s.hello();
  const wrong = await s.sendSigned(
    target("getDh", [["cn", "0000000000000000"]]),
    "A".repeat(27) + "=",
  );
  assert.equal(wrong.status, 400);
  const bare = await t.local.rpc(target("getDh", [["cn", "0000000000000000"]]));
  assert.equal(bare.status, 400);
  assert.equal((await t.local.rpc(target("hello", [["client_prefix", "1"]]))).status, 404);
});

Deno.test("bad inputs get the right 4xx and change nothing stored", async () => {
  await using t = await setup();
  await t.issue(0);
  const before = t.snapshot();
  const { csr } = await nodeCsr(1);
  const big = "-----BEGIN CERTIFICATE REQUEST-----\n" + "A".repeat(20000);
  const cases: [string, number, string?][] = [
    ["/nosuch", 400],
    ["/getCa/x", 400],
    ["getCa", 400],
    ["/getCa?x=1", 400],
    ["/requestCertificate?token=&req=x&&ip=", 400],
    ["/requestCertificate?token=", 400],
    [target("requestCertificate", [["token", ""], ["req", "garbage"]]), 400],
    [target("requestCertificate", [["token", ""], ["req", big]]), 413],
    [target("requestCertificate", [["token", ""], ["req", csr.replace(/[A-Z]{4}/, "ABCD")]]), 400],
    ["/getCa?" + "x=1&".repeat(10000), 414],
    ["/getCa", 501, "POST"],
    ["/revoke?cn_or_serial=1", 403, "GET10"],
    [target("requestCertificate", [["token", "nosuch"], ["req", csr]]), 204],
    [target("revoke", [["cn_or_serial", "99"]]), 404],
    [target("revoke", [["cn_or_serial", "5/2"]]), 400],
    [target("revoke", [["cn_or_serial", "5/16"]]), 404],
    [target("isToken", [["token", "nosuch"]]), 204],
  ];
  for (const [tg, status, how] of cases) {
    const peer = how === "GET10" ? "10.0.0.1" : "127.0.0.1";
    const method = how === "POST" ? "POST" : "GET";
    const r = await t.local.rpc(tg, {}, peer, method);
    assert.equal(r.status, status, tg.slice(0, 80));
    assert.equal(t.snapshot(), before, `${tg.slice(0, 60)} changed the database`);
  }
});

Deno.test("a CSR with another key size than the CA is refused (quirk Q9)", async () => {
  await using t = await setup();
  const { generateRsaKey } = await import("../../core/crypto.ts");
  const { createCsr } = await import("../../core/cert.ts");
  const csr = createCsr(await generateRsaKey(2048), []);
  const r = await t.local.rpc(target("requestCertificate", [["token", ""], ["req", csr]]));
  assert.equal(r.status, 400);
  assert.match(r.note!, /2048-bit RSA, the CA key is 1024-bit/);
});

Deno.test("private methods are refused from other origins and through foreign proxies", async () => {
  await using t = await setup();
  for (
    const [peer, xff, status] of [
      ["10.1.2.3", null, 403],
      ["127.0.0.1", "10.1.2.3", 403],
      ["::ffff:127.0.0.1", "::1", 204],
      ["::1", null, 204],
    ] as const
  ) {
    const headers: Record<string, string> = xff ? { "X-Forwarded-For": xff } : {};
    const r = await t.local.rpc("/updateHMAC", headers, peer);
    assert.equal(r.status, status, `${peer} ${xff}`);
  }
});

Deno.test("tokens: add, check, use once, conflict, delete; disabled with prefix length 0", async () => {
  await using t = await setup();
  await t.issue(0);
  const rpc = t.local.rpc;
  assert.equal(
    (await rpc(target("addToken", [["email", "a@example.com"], ["token", "abc"]]))).status,
    204,
  );
  assert.equal(
    (await rpc(target("addToken", [["email", "b@example.com"], ["token", "abc"]]))).status,
    409,
  );
  assert.equal(dec.decode((await rpc(target("isToken", [["token", "abc"]]))).bodyBytes), "1");
  const r = await t.issue(1, [], "abc");
  assert.equal(r.status, 200);
  assert.equal((await rpc(target("isToken", [["token", "abc"]]))).status, 204);
  assert.equal((await t.issue(2, [], "abc")).status, 204);
  const prefix = await rpc(target("getNodePrefix", [["email", "a@example.com"]]));
  assert.equal(dec.decode(prefix.bodyBytes), "1/16");
  const ip6 = await rpc(target("getIPv6Address", [["email", "a@example.com"]]));
  assert.equal(dec.decode(ip6.bodyBytes), "2001:db8:42:1::");
  assert.equal((await rpc(target("getNodePrefix", [["email", "x@example.com"]]))).status, 204);
  await rpc(target("addToken", [["email", "c@example.com"], ["token", "gone"]]));
  assert.equal((await rpc(target("deleteToken", [["token", "gone"]]))).status, 204);
  assert.equal((await rpc(target("isToken", [["token", "gone"]]))).status, 204);
  // requestToken without a mailer: 403.
  assert.equal((await rpc(target("requestToken", [["email", "a@example.com"]]))).status, 403);
});

Deno.test("registration switches: e-mail and anonymous registration can be disabled", async () => {
  await using t = await setup({ prefixLength: 0, anonymousPrefixLength: 0 });
  assert.equal((await t.issue(0)).status, 403);
  assert.equal((await t.issue(0, [], "tok")).status, 403);
  const add = await t.local.rpc(target("addToken", [["email", "a@b"], ["token", "x"]]));
  assert.equal(add.status, 403);
});

Deno.test("revocation by serial shows in the CRL and renewal re-issues with the same notAfter", async () => {
  await using t = await setup();
  await t.issue(0);
  const pem = dec.decode((await t.issue(1)).bodyBytes);
  const old = parseCertificate(pem);
  assert.equal((await t.local.rpc(target("revoke", [["cn_or_serial", "2"]]))).status, 204);
  assert.equal(t.local.registry.versionNumber(), 2);
  const { key } = await nodeCsr(1);
  const s = localSession(t.local, "0000000000000001", key, t.files.caPem);
  await s.hello();
  const params = await decodeNetworkConfig((await s.call("getNetworkConfig")).body, key);
  assert.deepEqual(params.crl, [2]);
  const renewed = parseCertificate(dec.decode((await s.call("renewCertificate")).body));
  assert.equal(renewed.serial, 3n);
  assert.equal(renewed.notAfter.getTime(), old.notAfter.getTime());
  assert.deepEqual(renewed.subjectDer, old.subjectDer);
  const again = await s.call("renewCertificate");
  assert.equal(dec.decode(again.body), renewed.pem);
});

Deno.test("revocation by CN frees the prefix, drops the session and bumps the version (VECTORS §13.1)", async () => {
  await using t = await setup();
  for (let i = 0; i < 4; i++) await t.issue(i % 2);
  const { key } = await nodeCsr(0);
  const s = localSession(t.local, "0000000000000010", key, t.files.caPem);
  assert.equal(await s.hello(), 200);
  for (const cn of ["2/16", "3/16"]) {
    assert.equal((await t.local.rpc(target("revoke", [["cn_or_serial", cn]]))).status, 204);
  }
  assert.deepEqual(t.local.registry.crl(), [3, 4]);
  assert.equal(t.local.registry.versionNumber(), 3);
  assert.equal((await s.call("getDh")).status, 401);
  const free = treeRows(t.local.registry.db).filter((r) => r.cert === null).map((r) => r.prefix);
  assert.ok(free.includes("000000000000001"));
  const next = parseCertificate(dec.decode((await t.issue(0)).bodyBytes));
  assert.equal(next.subjectSerial, 2);
  assert.equal(next.cn, "2/16");
});

Deno.test("renewal happens only in the last 30 days", async () => {
  const clock = manualClock(Date.now());
  await using t = await setup({}, { clock });
  await t.issue(0);
  const { key } = await nodeCsr(0);
  const s = localSession(t.local, "0000000000000000", key, t.files.caPem);
  await s.hello();
  const first = dec.decode((await s.call("renewCertificate")).body);
  assert.equal(parseCertificate(first).serial, 1n);
  await clock.advance(336 * 86400 * 1000);
  const renewed = parseCertificate(dec.decode((await s.call("renewCertificate")).body));
  assert.equal(renewed.serial, 2n);
  assert.equal(renewed.notBefore.getTime(), Math.floor(clock.now() / 1000) * 1000);
});

Deno.test("expired certificates and tokens are cleaned up after the grace period and blocks merge", async () => {
  const clock = manualClock(Date.now());
  await using t = await setup({ gracePeriod: 1000 }, { clock });
  await t.issue(0);
  for (let i = 0; i < 5; i++) await t.issue(1);
  await t.local.rpc(target("addToken", [["email", "a@b"], ["token", "tok"]]));
  const r = t.local.registry;
  assert.equal(r.nextCleanupS(), Math.floor(clock.now() / 1000) + 1000);
  // Keep the registry node alive by renewing it near its expiry.
  await clock.advance(340 * 86400 * 1000);
  const { key } = await nodeCsr(0);
  const s = localSession(t.local, "0000000000000000", key, t.files.caPem);
  await s.hello();
  assert.equal((await s.call("renewCertificate")).status, 200);
  await clock.advance(26 * 86400 * 1000);
  r.cleanup();
  assert.equal(r.certs.size, 1);
  assert.equal((await t.local.rpc(target("isToken", [["token", "tok"]]))).status, 204);
  const rows = treeRows(r.db);
  assert.deepEqual(rows.filter((x) => x.cert !== null).map((x) => x.prefix), ["0000000000000000"]);
  assert.equal(rows.length, 17, "one allocated row plus one free sibling per level");
});

Deno.test("clean-up stops the registry when its own node's certificate is long expired", async () => {
  const clock = manualClock(Date.now());
  await using t = await setup({ gracePeriod: 10 }, { clock });
  await t.issue(0);
  await clock.advance(366 * 86400 * 1000);
  assert.throws(() => t.local.registry.cleanup(), RegistryFatalError);
});

Deno.test("updateHMAC walks the key states of VECTORS §14 and bumps the version each time", async () => {
  const clock = manualClock(1_800_000_000_000);
  await using t = await setup({}, { clock });
  await t.issue(0);
  const r = t.local.registry;
  const hex = (
    k: Uint8Array | null,
  ) => (k === null ? "-" : k.length ? Array.from(k).join(".") : "empty");
  const k0 = hex(r.babelKeys().h0);
  assert.notEqual(k0, "-");
  const states: string[][] = [];
  const until: unknown[] = [];
  for (let i = 0; i < 5; i++) {
    assert.equal((await t.local.rpc("/updateHMAC")).status, 204);
    const k = r.babelKeys();
    states.push([hex(k.h0), hex(k.h1), hex(k.h2)]);
    until.push(r.db.getConfig("valid_until") ?? null);
    assert.equal(r.versionNumber(), i + 2);
  }
  const [k1, k2] = [states[0][1], states[3][1]];
  assert.deepEqual(states, [[k0, k1, "-"], ["-", k1, k0], [k1, "-", "-"], [k1, k2, "-"], [
    "-",
    k2,
    k1,
  ]]);
  assert.deepEqual(until, [1_800_003_600, null, null, 1_800_003_600, null]);
});

Deno.test("methods needing the registry node answer 204 quickly without a relay", async () => {
  await using t = await setup();
  await t.issue(0, [["emailAddress", "n@example.com"]], "");
  const { key } = await nodeCsr(0);
  const s = localSession(t.local, "0000000000000000", key, t.files.caPem);
  await s.hello();
  const t0 = performance.now();
  const boot = await s.call("getBootstrapPeer");
  assert.equal(boot.status, 204);
  assert.ok(boot.macOk);
  assert.equal((await t.local.rpc(target("getIPv4Information", [["email", "x@y"]]))).status, 204);
  const versions = await t.local.rpc("/versions");
  assert.deepEqual(JSON.parse(dec.decode(versions.bodyBytes)), { "0000000000000000": null });
  const topo = await t.local.rpc("/topology");
  assert.deepEqual(JSON.parse(dec.decode(topo.bodyBytes)), { "": [] });
  assert.ok(performance.now() - t0 < 3000);
  assert.equal((await s.call("getCountry", [["address", "1.2.3.4"]])).status, 400);
});

Deno.test("locations pick the community, from the location parameter or GeoIP of the ip (quirk Q4)", async () => {
  const looked: string[] = [];
  const geoip = {
    lookup(ip: string) {
      looked.push(ip);
      return ip === "203.0.113.5" ? { country: "FR", continent: "EU" } : null;
    },
  };
  const files = await registryFiles({ prefixLength: 13, anonymousPrefixLength: 13 });
  const local = localRegistry(files, { geoip, communities: "000 *\n001 @AS AU\n010 FR DE IT\n" });
  try {
    const { csr } = await nodeCsr(0);
    const req = (loc: string, headers: Record<string, string> = {}, peer = "127.0.0.1") =>
      local.rpc(
        target("requestCertificate", [["token", ""], ["req", csr], ["location", loc], ["ip", ""]]),
        headers,
        peer,
      );
    const cnOf = async (p: Promise<{ bodyBytes: Uint8Array }>) =>
      parseCertificate(dec.decode((await p).bodyBytes)).cn;
    assert.equal(await cnOf(req("", { "X-Forwarded-For": "203.0.113.5, 10.0.0.1" })), "16384/16");
    assert.equal(await cnOf(req("JP,AS")), "8192/16");
    assert.equal(await cnOf(req("", {}, "::ffff:198.51.100.1")), "0/16");
    assert.deepEqual(looked, ["203.0.113.5", "198.51.100.1"]);
    const { key } = await nodeCsr(0);
    const s = localSession(local, "0100000000000000", key, files.caPem);
    await s.hello();
    const c = await s.call("getCountry", [["address", "203.0.113.5"]]);
    assert.equal(dec.decode(c.body), "FR");
    assert.equal(cnFromPrefix("0100000000000000"), "16384/16");
  } finally {
    await local.close();
    await files.cleanup();
  }
});

Deno.test("addToken refuses an empty token, control characters and anything but one address", async () => {
  await using t = await setup();
  const before = t.snapshot();
  for (
    const [email, token] of [
      ["a@example.com", ""],
      ["a@example.com", "to ken"],
      ["a@example.com", "tok\u001b[2J"],
      ["a@example.com\nb@example.com", "tok"],
      ["a@example.com, b@example.com", "tok"],
      ["", "tok"],
    ]
  ) {
    const r = await t.local.rpc(target("addToken", [["email", email], ["token", token]]));
    assert.equal(r.status, 400, JSON.stringify([email, token]));
  }
  assert.equal(t.snapshot(), before);
});

Deno.test("requestToken mails exactly one recipient: lists and header injections get 400", async () => {
  await using t = await setup();
  const sent: string[] = [];
  t.local.ctx.mailer = {
    send: (msg) => Promise.resolve(void sent.push(msg.to)),
    close() {},
  };
  for (
    const email of [
      "a@x.example, b@y.example, c@z.example",
      "a@x.example,b@y.example",
      "a@x.example b@y.example",
      "Bcc: someone@x.example",
      "a@x.example\r\nBcc: someone@x.example",
      "<a@x.example>",
      '"a b"@x.example',
      "a@@x.example",
      "a@x..example",
      "a".repeat(250) + "@x.example",
      "a\u0085@x.example",
    ]
  ) {
    const r = await t.local.rpc(target("requestToken", [["email", email]]));
    assert.equal(r.status, 400, JSON.stringify(email));
  }
  assert.deepEqual(sent, []);
  assert.equal(
    (await t.local.rpc(target("requestToken", [["email", "o'brien+re6st@x.example"]]))).status,
    204,
  );
  assert.deepEqual(sent, ["o'brien+re6st@x.example"]);
});

Deno.test("certificate and token requests are limited per source with 429, reported once a minute", async () => {
  const clock = manualClock(Date.now());
  await using t = await setup({ rateLimit: 3 }, { clock });
  const req = (peer: string, headers: Record<string, string> = {}) =>
    t.local.rpc(target("requestCertificate", [["token", ""], ["req", "garbage"]]), headers, peer);
  for (let i = 0; i < 3; i++) assert.equal((await req("192.0.2.1")).status, 400);
  const refused = await req("192.0.2.1");
  assert.equal(refused.status, 429);
  assert.equal(refused.headers["Retry-After"], "60");
  assert.match(refused.note!, /192\.0\.2\.1 is over the limit of 3 .* per minute/);
  assert.ok(!refused.quiet, "the first refusal is reported");
  const again = await t.local.rpc(
    target("requestToken", [["email", "a@x.example"]]),
    {},
    "192.0.2.1",
  );
  assert.equal(again.status, 429, "requestToken counts too");
  assert.ok(again.quiet, "later refusals in the same minute are not");
  assert.equal((await t.local.rpc("/getCa", {}, "192.0.2.1")).status, 200, "getCa is not limited");
  assert.equal((await req("192.0.2.2")).status, 400, "another source");
  for (let i = 0; i < 5; i++) assert.equal((await req("127.0.0.1")).status, 400, "the admin");
  // Behind a local proxy the address it adds counts.
  for (let i = 0; i < 3; i++) {
    assert.equal(
      (await req("127.0.0.1", { "X-Forwarded-For": "1.1.1.1, 198.51.100.7" })).status,
      400,
    );
  }
  assert.equal((await req("127.0.0.1", { "X-Forwarded-For": "198.51.100.7" })).status, 429);
  await clock.advance(20_000);
  assert.equal((await req("192.0.2.1")).status, 400, "one call back after 20 s");
  assert.equal((await req("192.0.2.1")).status, 429);
});
