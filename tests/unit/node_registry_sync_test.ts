import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parseCertificate } from "../../core/cert.ts";
import { generateRsaKey } from "../../core/crypto.ts";
import { memoryLogger } from "../../core/log.ts";
import { openCache } from "../../core/node/cache.ts";
import { manualClock } from "../../core/clock.ts";
import { loadIdentity } from "../../core/node/identity.ts";
import {
  ensureDh,
  renewIdentity,
  type SyncContext,
  type SyncFiles,
  syncNetworkConfig,
} from "../../core/node/registry_sync.ts";
import {
  fakeRegistry,
  networkConfigBody,
  nodeCertPem,
  nodeKeyPem,
  TEST_CA_CERT_PEM,
} from "../helpers/node_fixtures.ts";
import { settled } from "../helpers/wait.ts";

const FILES = { ca: "/c/ca.crt", cert: "/c/cert.crt", key: "/c/cert.key" };

async function setup(certOpts: Parameters<typeof nodeCertPem>[1] = {}) {
  const key = await nodeKeyPem();
  const cert = nodeCertPem(key, certOpts);
  const texts = new Map([[FILES.ca, TEST_CA_CERT_PEM], [FILES.cert, cert], [FILES.key, key]]);
  const read = (p: string) => new TextEncoder().encode(texts.get(p)!);
  const identity = loadIdentity(FILES, read, new Date());
  const files: SyncFiles & { texts: Map<string, string> } = {
    texts,
    exists: (p) => Promise.resolve(texts.has(p)),
    readText: (p) => Promise.resolve(texts.get(p) ?? null),
    writeText: (p, t) => Promise.resolve(void texts.set(p, t)),
    replaceText: (p, t) => Promise.resolve(void texts.set(p, t)),
    rename(from, to) {
      const t = texts.get(from);
      if (t === undefined) return Promise.reject(new Error(`No such file: ${from}`));
      texts.delete(from);
      texts.set(to, t);
      return Promise.resolve();
    },
  };
  const cache = openCache(new DatabaseSync(":memory:"));
  const clock = manualClock(Date.now());
  const log = memoryLogger();
  return { key, cert, identity, files, cache, clock, log };
}

function ctx(s: Awaited<ReturnType<typeof setup>>, registry: SyncContext["registry"]): SyncContext {
  return { registry, cache: s.cache, clock: s.clock, log: s.log };
}

Deno.test("the network configuration is fetched with a back-off of 1 s doubling while the registry is down", async () => {
  const s = await setup();
  let fails = 3;
  const body = networkConfigBody(s.cert, { extra: { hello: 20 } });
  const reg = fakeRegistry({
    getNetworkConfig: () =>
      fails-- > 0 ? Promise.reject(new Error("refused")) : Promise.resolve(body),
  });
  const done = syncNetworkConfig(ctx(s, reg), s.identity);
  const times: number[] = [];
  const t0 = s.clock.now();
  for (let i = 0; i < 4; i++) {
    await s.clock.advance(i === 0 ? 0 : 1000 * 2 ** (i - 1));
    times.push(reg.calls.length);
  }
  const params = await done;
  assert.deepEqual(times, [1, 2, 3, 4], "one attempt after 0, 1, 2 and 4 s");
  assert.equal(s.clock.now() - t0, 7000);
  assert.equal(params.hello, 20);
  assert.ok(s.log.lines.some((l) => /will retry in 4 s/.test(l)));
  s.cache.close();
});

Deno.test("a configuration whose version is not signed by the CA is never stored", async () => {
  const s = await setup();
  const forged = networkConfigBody(s.cert, { signWith: await generateRsaKey(1024) });
  let n = 0;
  const good = networkConfigBody(s.cert);
  const reg = fakeRegistry({ getNetworkConfig: () => Promise.resolve(n++ ? good : forged) });
  const done = syncNetworkConfig(ctx(s, reg), s.identity);
  await s.clock.advance(0);
  assert.equal(s.cache.version(), null);
  assert.ok(s.log.lines.some((l) => /not signed by the CA/.test(l)));
  await s.clock.advance(1000);
  await done;
  assert.notEqual(s.cache.version(), null);
  s.cache.close();
});

Deno.test("a valid cached configuration is used without asking an unreachable registry", async () => {
  const s = await setup();
  const body = networkConfigBody(s.cert);
  const up = fakeRegistry({ getNetworkConfig: () => Promise.resolve(body) });
  await syncNetworkConfig(ctx(s, up), s.identity);
  const down = fakeRegistry();
  const params = await syncNetworkConfig(ctx(s, down), s.identity);
  assert.deepEqual(down.calls, []);
  assert.equal(params.client_count, 10);
  s.cache.close();
});

Deno.test("the registry node always refreshes its configuration at start-up, once", async () => {
  const s = await setup({ cn: "0/16" });
  const body = networkConfigBody(s.cert);
  await syncNetworkConfig(
    ctx(s, fakeRegistry({ getNetworkConfig: () => Promise.resolve(body) })),
    s.identity,
  );
  const down = fakeRegistry();
  await syncNetworkConfig(ctx(s, down), s.identity);
  assert.deepEqual(down.calls, ["getNetworkConfig"], "one attempt, no retry loop");
  assert.ok(s.log.lines.some((l) => /using the cached one/.test(l)));
  s.cache.close();
});

const DH_PEM = "-----BEGIN DH PARAMETERS-----\nMIIBCAKCAQEA\n-----END DH PARAMETERS-----\n";

Deno.test("DH parameters are fetched only when the file is missing", async () => {
  const s = await setup();
  const reg = fakeRegistry({ getDh: () => Promise.resolve(DH_PEM) });
  await ensureDh(ctx(s, reg), s.files, "/st/dh.pem");
  assert.equal(s.files.texts.get("/st/dh.pem"), DH_PEM);
  await ensureDh(ctx(s, reg), s.files, "/st/dh.pem");
  assert.deepEqual(reg.calls, ["getDh"]);
  s.cache.close();
});

Deno.test("DH parameters go to a temporary file renamed into place, never written in place", async () => {
  const s = await setup();
  const writes: string[] = [];
  const files = {
    ...s.files,
    writeText(p: string, t: string) {
      writes.push(`write ${p}`);
      return s.files.writeText(p, t);
    },
    rename(from: string, to: string) {
      writes.push(`rename ${from} ${to}`);
      return s.files.rename(from, to);
    },
  };
  await ensureDh(
    ctx(s, fakeRegistry({ getDh: () => Promise.resolve(DH_PEM) })),
    files,
    "/st/dh.pem",
  );
  assert.deepEqual(writes, ["write /st/dh.pem.tmp", "rename /st/dh.pem.tmp /st/dh.pem"]);
  assert.equal(s.files.texts.get("/st/dh.pem"), DH_PEM);
  assert.equal(s.files.texts.has("/st/dh.pem.tmp"), false);
  s.cache.close();
});

Deno.test("a dh.pem without DH parameters (a write cut short) is fetched again", async () => {
  const s = await setup();
  s.files.texts.set("/st/dh.pem", "-----BEGIN DH PARAMETERS-----\nMIIB");
  const reg = fakeRegistry({ getDh: () => Promise.resolve(DH_PEM) });
  await ensureDh(ctx(s, reg), s.files, "/st/dh.pem");
  assert.deepEqual(reg.calls, ["getDh"]);
  assert.equal(s.files.texts.get("/st/dh.pem"), DH_PEM);
  assert.ok(s.log.lines.some((l) => /\/st\/dh.pem holds no DH parameters/.test(l)));
  s.files.texts.set("/st/dh.pem", "");
  await ensureDh(ctx(s, reg), s.files, "/st/dh.pem");
  assert.deepEqual(reg.calls, ["getDh", "getDh"], "an empty file is fetched again too");
  s.cache.close();
});

Deno.test("a registry answer without DH parameters is retried, not saved", async () => {
  const s = await setup();
  let answers = ["<html>proxy error</html>", DH_PEM];
  const reg = fakeRegistry({ getDh: () => Promise.resolve(answers.shift()!) });
  const done = ensureDh(ctx(s, reg), s.files, "/st/dh.pem");
  await settled(() => reg.calls.length >= 1, "the first getDh call");
  await s.clock.advance(1000);
  await done;
  assert.deepEqual(reg.calls, ["getDh", "getDh"]);
  assert.equal(s.files.texts.get("/st/dh.pem"), DH_PEM);
  answers = [];
  s.cache.close();
});

Deno.test("a certificate due for renewal is replaced and the next renewal is 30 days before expiry", async () => {
  const now = Date.now();
  const s = await setup({ notAfter: new Date(now + 10 * 86400_000) });
  const fresh = nodeCertPem(s.key, { serial: 8, notAfter: new Date(now + 365 * 86400_000) });
  const reg = fakeRegistry({ renewCertificate: () => Promise.resolve(fresh) });
  const r = await renewIdentity(ctx(s, reg), s.files, s.identity, new Set());
  assert.equal(r.renewed, true);
  assert.equal(s.files.texts.get(FILES.cert), fresh);
  const expected = parseCertificate(fresh).notAfter.getTime() - 30 * 86400_000;
  assert.equal(
    r.nextRenewalMs,
    Math.min(expected, parseCertificate(TEST_CA_CERT_PEM).notAfter.getTime() - 30 * 86400_000),
  );
  s.cache.close();
});

Deno.test("an identical renewal answer is a failure retried 24 h later", async () => {
  const s = await setup();
  const reg = fakeRegistry({ renewCertificate: () => Promise.resolve(s.cert) });
  const r = await renewIdentity(ctx(s, reg), s.files, s.identity, new Set([7n]));
  assert.equal(r.renewed, false);
  assert.equal(r.nextRenewalMs, s.clock.now() + 86400_000);
  assert.ok(s.log.lines.some((l) => /same certificate back; will retry in 24 h/.test(l)));
  s.cache.close();
});

Deno.test("a certificate that is not due and not revoked is left alone", async () => {
  const s = await setup();
  const reg = fakeRegistry();
  const r = await renewIdentity(ctx(s, reg), s.files, s.identity, new Set([99n]));
  assert.deepEqual(reg.calls, []);
  assert.equal(r.renewed, false);
  assert.ok(r.nextRenewalMs > s.clock.now());
  s.cache.close();
});
