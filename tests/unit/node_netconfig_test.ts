import assert from "node:assert/strict";
import { memoryLogger } from "../../core/log.ts";
import { manualClock } from "../../core/clock.ts";
import { NetconfUpdates, restartReason } from "../../core/node/netconfig.ts";

Deno.test("hello and encryption need a restart, Babel keys restart babeld; crl applies live", () => {
  const f = { clientTunnels: true, minProtocol: 1 };
  assert.equal(restartReason(["crl", "version", "registry_prefix"], f), null);
  assert.match(restartReason(["crl", "hello"], f)!, /hello/);
  assert.equal(restartReason(["babel_hmac_sign", "babel_hmac_accept", "babel_default"], f), null);
  assert.match(restartReason(["tunnel_refresh"], f)!, /tunnel_refresh/);
  assert.equal(restartReason(["tunnel_refresh"], { ...f, clientTunnels: false }), null);
  assert.equal(
    restartReason(["client_count"], { ...f, overridden: new Set(["client_count"]) }),
    null,
    "--client-count given: the network value does not matter",
  );
  assert.match(restartReason(["version"], { ...f, minProtocol: 11 })!, /protocol 11/);
});

function bench(o: { fail?: number; changed?: string[]; registryNode?: boolean } = {}) {
  const clock = manualClock();
  const fetches: number[] = [];
  const applied: string[][] = [];
  let fail = o.fail ?? 0;
  let validUntil: number | null = null;
  const u = new NetconfUpdates({
    clock,
    log: memoryLogger(),
    fetch: () => {
      fetches.push(clock.now());
      if (fail > 0) {
        fail--;
        return Promise.reject(new Error("registry down"));
      }
      return Promise.resolve(o.changed ?? ["crl", "version"]);
    },
    apply: (c) => {
      applied.push(c);
      return Promise.resolve();
    },
    isRegistryNode: () => o.registryNode ?? false,
    validUntil: () => validUntil,
  });
  const end = new AbortController();
  const loop = u.run(end.signal);
  return {
    clock,
    u,
    fetches,
    applied,
    setValidUntil: (v: number) => validUntil = v,
    stop: async () => {
      end.abort();
      await loop;
    },
  };
}

Deno.test("a newer version is fetched 1 s later, once for a burst of announcements", async () => {
  const b = bench();
  const t0 = b.clock.now();
  b.u.newVersion();
  b.u.newVersion();
  await b.clock.advance(900);
  assert.equal(b.fetches.length, 0);
  await b.clock.advance(200);
  assert.deepEqual(b.fetches, [t0 + 1000]);
  assert.deepEqual(b.applied, [["crl", "version"]]);
  await b.stop();
});

Deno.test("a failed fetch is retried every 300 s", async () => {
  const b = bench({ fail: 1 });
  b.u.newVersion();
  await b.clock.advance(1000);
  assert.equal(b.fetches.length, 1);
  assert.equal(b.applied.length, 0);
  await b.clock.advance(299_000);
  assert.equal(b.fetches.length, 1);
  await b.clock.advance(1_000);
  assert.equal(b.fetches.length, 2);
  assert.equal(b.applied.length, 1);
  await b.stop();
});

Deno.test("nothing changed: nothing applied", async () => {
  const b = bench({ changed: [] });
  b.u.newVersion();
  await b.clock.advance(1000);
  assert.equal(b.fetches.length, 1);
  assert.equal(b.applied.length, 0);
  await b.stop();
});

Deno.test("the staleness check fetches once after two hourly checks without the registry", async () => {
  const b = bench();
  b.u.check(false);
  await b.clock.advance(0);
  assert.equal(b.fetches.length, 0, "first sight: only suspicious");
  b.u.check(false);
  await b.clock.advance(0);
  assert.equal(b.fetches.length, 0, "not an hour yet");
  await b.clock.advance(3_600_000);
  b.u.check(false);
  await b.clock.advance(0);
  assert.equal(b.fetches.length, 1);
  await b.clock.advance(3_600_000);
  b.u.check(true);
  await b.clock.advance(3_600_000);
  b.u.check(false);
  await b.clock.advance(0);
  assert.equal(b.fetches.length, 1, "the registry came back in between");
  await b.stop();
});

Deno.test("a configuration past valid_until at start-up is fetched at the first check", async () => {
  const b = bench();
  b.setValidUntil(b.clock.now() / 1000 - 10);
  b.u.check(true);
  await b.clock.advance(0);
  assert.equal(b.fetches.length, 1);
  await b.stop();
});

Deno.test("the registry node never runs the staleness check", async () => {
  const b = bench({ registryNode: true });
  b.u.check(false);
  await b.clock.advance(3_600_000);
  b.u.check(false);
  await b.clock.advance(0);
  assert.equal(b.fetches.length, 0);
  await b.stop();
});
