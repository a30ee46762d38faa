// Abuse limits of the registry (core/registry/limits.ts): sources, rate limit, connection caps
// and deadlines, with times passed in.

import assert from "node:assert/strict";
import {
  ConnectionTable,
  OncePerMinute,
  RateLimiter,
  sourceKey,
} from "../../core/registry/limits.ts";

Deno.test("a source is an IPv4 address or the /64 of an IPv6 address", () => {
  assert.equal(sourceKey("192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("2001:db8:0:1:aaaa::1"), "2001:db8:0:1::/64");
  assert.equal(sourceKey("2001:DB8:0:1:bbbb:cccc:dddd:eeee"), "2001:db8:0:1::/64");
  assert.equal(sourceKey("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(sourceKey("::1"), "0:0:0:0::/64");
  assert.notEqual(sourceKey("2001:db8:0:2::1"), sourceKey("2001:db8:0:1::1"));
});

Deno.test("something is said at most once a minute per key", () => {
  const once = new OncePerMinute(2);
  assert.ok(once.due("a", 0));
  assert.ok(!once.due("a", 59_999));
  assert.ok(once.due("b", 10));
  assert.ok(once.due("a", 60_000));
  once.due("c", 70_000); // "b" is forgotten: at most 2 keys
  assert.ok(once.due("b", 70_001));
});

Deno.test("the rate limit allows N calls a minute per source, refills evenly, reports once a minute", () => {
  const rl = new RateLimiter(3);
  const t = 1_000_000;
  assert.deepEqual([0, 1, 2].map(() => rl.take("a", t).ok), [true, true, true]);
  assert.deepEqual(rl.take("a", t), { ok: false, report: true });
  assert.deepEqual(rl.take("a", t + 1000), { ok: false, report: false });
  assert.ok(rl.take("b", t).ok, "another source has its own budget");
  assert.ok(rl.take("a", t + 20_000).ok, "one call back after a third of a minute");
  assert.deepEqual(rl.take("a", t + 20_001), { ok: false, report: false });
  assert.deepEqual(rl.take("a", t + 80_000).ok, true);
  assert.ok(new RateLimiter(0).take("a", t).ok, "0: no limit");
});

Deno.test("the rate limiter forgets full buckets first and keeps at most maxSources", () => {
  const rl = new RateLimiter(2, 3);
  rl.take("busy", 0);
  rl.take("busy", 0);
  rl.take("idle1", 0);
  rl.take("idle2", 0);
  // a minute later idle1 and idle2 are full again: they go, "busy" stays limited
  rl.take("new", 30_000);
  assert.ok(rl.size <= 3);
  assert.deepEqual(rl.take("busy", 30_000).ok, true, "one refilled in 30 s");
  assert.deepEqual(rl.take("busy", 30_000).ok, false);
});

const limits = {
  maxConnections: 4,
  maxPerSource: 2,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
};

Deno.test("over its cap a source loses its oldest idle connection, never a busy one", () => {
  const t = new ConnectionTable<string>(limits);
  assert.deepEqual(t.open("a1", "A", 0), { accept: true, evict: [], overSource: false });
  t.open("a2", "A", 10);
  const v = t.open("a3", "A", 20);
  assert.deepEqual(v, { accept: true, evict: ["a1"], overSource: true });
  assert.equal(t.countFrom("A"), 2);
  t.busy("a2");
  t.busy("a3");
  assert.deepEqual(t.open("a4", "A", 30), { accept: false, evict: [], overSource: true });
  assert.ok(t.open("x", "X", 30, true).accept);
  assert.ok(t.open("x2", "X", 30, true).accept, "a trusted source has no cap of its own");
  assert.ok(t.open("x3", "X", 30, true).evict.length === 1, "but counts in the total");
});

Deno.test("over the total cap the oldest idle connection of any source goes", () => {
  const t = new ConnectionTable<string>({ ...limits, maxPerSource: 0 });
  t.open("a", "A", 0);
  t.open("b", "B", 1);
  t.open("c", "C", 2);
  t.open("d", "D", 3);
  t.busy("a");
  assert.deepEqual(t.open("e", "E", 4).evict, ["b"]);
  t.waiting("c", 5); // answered: idle again, now the youngest
  assert.deepEqual(t.open("f", "F", 6).evict, ["d"]);
  assert.equal(t.oldestIdle(), "e");
  assert.equal(t.size, 4);
});

Deno.test("deadlines: headers within the header timeout, the next request within the idle timeout", () => {
  const t = new ConnectionTable<string>(limits);
  t.open("quiet", "A", 0);
  t.open("slow", "B", 0);
  t.open("kept", "C", 0);
  t.reading("slow", 5_000); // still due at 10 s, from the connection
  t.busy("kept");
  assert.deepEqual(t.expired(9_999), []);
  assert.deepEqual(t.expired(10_000), ["quiet", "slow"]);
  t.close("quiet");
  t.close("slow");
  assert.deepEqual(t.expired(1_000_000), [], "a request being handled has no deadline");
  t.writing("kept", 20_000);
  assert.deepEqual(t.expired(50_000), ["kept"], "a reader that never takes its answer");
  t.waiting("kept", 21_000);
  assert.deepEqual(t.expired(50_999), []);
  t.reading("kept", 40_000);
  assert.deepEqual(t.expired(49_999), []);
  assert.deepEqual(t.expired(50_000), ["kept"], "headers due 10 s after the first byte");
  assert.deepEqual(t.idle(), ["kept"]);
});
