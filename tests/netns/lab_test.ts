import assert from "node:assert/strict";
import { createLab, hostAddress, isRoot, listNamespaces, sweepStaleLabs, waitFor } from "./lab.ts";
import { createRunner } from "../../platform/runner.ts";

const opts = { ignore: !isRoot, sanitizeOps: true, sanitizeResources: true };

Deno.test("hostAddress numbers hosts inside IPv4 and IPv6 subnets", () => {
  assert.equal(hostAddress("10.1.0.0/24", 1), "10.1.0.1/24");
  assert.equal(hostAddress("10.1.0.250/16", 10), "10.1.1.4/16");
  assert.equal(hostAddress("fd00:1::/64", 2), "fd00:1::2/64");
  assert.equal(hostAddress("2001:db8:0:0:1::/80", 0x10), "2001:db8::1:0:0:10/80");
});

Deno.test("waitFor fails with a message naming what never happened", async () => {
  await assert.rejects(
    waitFor(() => false, { what: "the moon", timeoutMs: 50, intervalMs: 10 }),
    /timed out waiting for the moon/,
  );
  let n = 0;
  assert.equal(await waitFor(() => ++n >= 3 && n, { what: "three", intervalMs: 1 }), 3);
});

Deno.test({
  name: "a lab routes and NATs between two hosts through a router, then leaves nothing behind",
  ...opts,
  fn: async () => {
    const lab = await createLab("lab-test");
    try {
      await lab.addHost("inside");
      await lab.addHost("router");
      await lab.addHost("server");
      const lan = await lab.link("inside", "router", { v4: "10.1.0.0/24", v6: "fd00:1::/64" });
      const wan = await lab.link("router", "server", { v4: "192.0.2.0/24", v6: "fd00:2::/64" });
      assert.deepEqual(lan.a, {
        host: "inside",
        iface: "to-router",
        v4: "10.1.0.1",
        v6: "fd00:1::1",
      });
      await lab.route("inside", "default", lan.b.v4!);
      await lab.route("inside", "default", lan.b.v6!);
      await lab.route("server", "fd00:1::/64", wan.a.v6!);
      await lab.nat("router", wan.a.iface);

      // IPv4 reaches the server only through the masquerade (the server has no route back).
      assert.equal(await lab.ping("inside", wan.b.v4!), true);
      // IPv6 is plainly routed.
      assert.equal(await lab.ping("inside", wan.b.v6!), true);
      // The NAT drops unsolicited inbound flows even when the server knows a route.
      await lab.route("server", "10.1.0.0/24", wan.a.v4!);
      assert.equal(await lab.ping("server", lan.a.v4!, { timeoutS: 1 }), false);

      // A link going down cuts traffic; bringing it up restores it (addresses are kept).
      await lab.linkDown("router", wan.a.iface);
      assert.equal(await lab.ping("inside", wan.b.v6!, { timeoutS: 1 }), false);
      await lab.linkUp("router", wan.a.iface);
      await lab.waitFor(() => lab.ping("inside", wan.b.v6!, { timeoutS: 1 }), {
        what: "the server to answer again after link up",
      });

      const r = await lab.exec("server", ["ip", "-4", "-o", "addr", "show", "dev", "to-router"]);
      assert.match(r.stdout, /192\.0\.2\.2\/24/);
      assert.equal((await lab.exec("server", ["false"])).code, 1);
    } finally {
      await lab.cleanup();
      await lab.cleanup(); // idempotent
    }
    const left = (await listNamespaces()).filter((n) => n.startsWith(lab.prefix));
    assert.deepEqual(left, []);
  },
});

Deno.test({
  name: "a segment joins several hosts on one LAN and cleanup stops spawned processes",
  ...opts,
  fn: async () => {
    const lab = await createLab("lab-seg");
    const log = await Deno.makeTempFile({ prefix: "r6-lab-" });
    try {
      for (const h of ["a", "b", "c"]) await lab.addHost(h);
      const seg = await lab.segment("lan0", ["a", "b", "c"], { v6: "fd00:5::/64" });
      assert.deepEqual(seg.ends.map((e) => [e.host, e.iface, e.v6]), [
        ["a", "lan0", "fd00:5::1"],
        ["b", "lan0", "fd00:5::2"],
        ["c", "lan0", "fd00:5::3"],
      ]);
      assert.equal(await lab.ping("a", "fd00:5::3"), true);
      assert.equal(await lab.ping("c", "fd00:5::2"), true);

      const child = lab.spawn("b", ["sh", "-c", "echo started; exec sleep 600"], { log });
      await lab.waitFor(async () => (await Deno.readTextFile(log)).includes("started"), {
        what: "the spawned shell to write its log",
      });
      const pids = await createRunner().run(["ip", "netns", "pids", lab.host("b").ns]);
      assert.equal(pids.stdout.trim(), String(child.pid));
      await lab.cleanup();
      const st = await child.status;
      assert.equal(st.success, false);
      assert.equal(st.signal, "SIGTERM");
    } finally {
      await lab.cleanup();
      await Deno.remove(log);
    }
    assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(lab.prefix)), []);
  },
});

Deno.test({
  name: "the sweep removes namespaces of dead labs and keeps those of live ones",
  ...opts,
  fn: async () => {
    const root = createRunner();
    const stale = "r6-4194305-zz-ghost"; // above the kernel's pid limit: its owner is dead
    const lab = await createLab("lab-sweep");
    try {
      await lab.addHost("alive");
      await root.run(["ip", "netns", "add", stale]);
      const removed = await sweepStaleLabs();
      assert.ok(removed.includes(stale), `sweep removed ${removed}`);
      const now = await listNamespaces();
      assert.ok(!now.includes(stale));
      assert.ok(now.includes(lab.host("alive").ns));
    } finally {
      await root.run(["ip", "netns", "del", stale], { ok: "any" });
      await lab.cleanup();
    }
  },
});
