import assert from "node:assert/strict";
import { createLinuxPlatform } from "../../platform/linux.ts";
import type { Runner } from "../../platform/runner.ts";
import type { Platform } from "../../platform/types.ts";
import { createLab, isRoot } from "./lab.ts";

const opts = { ignore: !isRoot, sanitizeOps: true, sanitizeResources: true };
const NETWORKS = ["2001:db8:42::/48", "10.42.0.0/16"];

/** Addresses, routes (all tables) and links of a namespace, as text. */
async function snapshot(r: Runner): Promise<string> {
  const out = [];
  for (
    const argv of [
      ["ip", "-o", "addr", "show"],
      ["ip", "-6", "route", "show", "table", "all"],
      ["ip", "-4", "route", "show", "table", "all"],
      ["ip", "-o", "link", "show"],
    ]
  ) out.push((await r.run(argv)).stdout);
  return out.join("---\n");
}

/** What a node does at start (PROTOCOL §7.1 steps 4, 8, 10) plus a tunnel tap. */
async function startNode(p: Platform) {
  assert.equal(await p.hasSourceRouting(), true);
  await p.setSysctl("net.ipv6.conf.all.forwarding", "0");
  assert.equal(await p.createTap("re6stnet0"), true);
  await p.setLink("re6stnet0", { up: true, mtu: 1400 });
  assert.equal(await p.addAddress({ address: "2001:db8:42:6::1/64", dev: "lo" }), true);
  await p.removeLoopbackLinkLocalRoute();
  assert.equal(await p.addRoute({ type: "unreachable", dst: "2001:db8:42::/48" }), true);
  assert.equal(
    await p.addRoute({ type: "unreachable", dst: "10.42.0.0/16", proto: "static" }),
    true,
  );
  assert.equal(
    await p.addRoute({ dst: "2001:db8:42:9::/64", from: "2001:db8:42::/48", dev: "re6stnet0" }),
    true,
  );
  assert.equal(await p.addAddress({ address: "10.42.1.1/24", dev: "lo" }), true);
}

Deno.test({
  name: "the Linux platform's changes are visible in the namespace and undoAll removes them all",
  ...opts,
  fn: async () => {
    const lab = await createLab("platform");
    try {
      const host = await lab.addHost("node");
      const before = await snapshot(host.runner);
      const p = createLinuxPlatform(host.runner);
      await startNode(p);

      const addr = (await host.runner.run(["ip", "-o", "addr", "show", "dev", "lo"])).stdout;
      assert.match(addr, /inet6 2001:db8:42:6::1\/64/);
      assert.match(addr, /inet 10\.42\.1\.1\/24/);
      const r6 = (await host.runner.run(["ip", "-6", "route", "show"])).stdout;
      assert.match(r6, /^unreachable 2001:db8:42::\/48 dev lo/m);
      assert.match(r6, /^2001:db8:42:9::\/64 from 2001:db8:42::\/48 dev re6stnet0/m);
      const r4 = (await host.runner.run(["ip", "-4", "route", "show"])).stdout;
      assert.match(r4, /^unreachable 10\.42\.0\.0\/16 proto static/m);
      const link = (await host.runner.run(["ip", "-d", "link", "show", "dev", "re6stnet0"])).stdout;
      assert.match(link, /mtu 1400/);
      assert.match(link, /state (UP|DOWN|UNKNOWN)/);
      assert.match(link, /tun type tap pi off/);
      // Re-adding is a no-op that reports false.
      assert.equal(await p.addAddress({ address: "2001:db8:42:6::1/64", dev: "lo" }), false);
      assert.equal(await p.addRoute({ type: "unreachable", dst: "2001:db8:42::/48" }), false);
      assert.equal(await p.createTap("re6stnet0"), false);
      assert.equal(p.changes().length, 7);

      await p.undoAll();
      await p.undoAll();
      assert.equal(await snapshot(host.runner), before);
      const fwd = await host.runner.run(["sysctl", "-n", "net.ipv6.conf.all.forwarding"]);
      assert.equal(fwd.stdout.trim(), "1");
    } finally {
      await lab.cleanup();
    }
  },
});

Deno.test({
  name: "a fresh platform finds and removes what a killed node left behind",
  ...opts,
  fn: async () => {
    const lab = await createLab("platform-kill");
    try {
      const host = await lab.addHost("node");
      const before = await snapshot(host.runner);
      await startNode(createLinuxPlatform(host.runner)); // never undone: "kill -9"

      const p = createLinuxPlatform(host.runner);
      const left = await p.listLeftovers({ networks: NETWORKS });
      assert.deepEqual(left.taps, ["re6stnet0"]);
      assert.deepEqual(left.addresses.map((a) => `${a.address} ${a.dev}`).sort(), [
        "10.42.1.1/24 lo",
        "2001:db8:42:6::1/64 lo",
      ]);
      assert.deepEqual(left.routes.map((r) => `${r.type ?? ""} ${r.dst}`).sort(), [
        " 2001:db8:42:9::/64",
        "unreachable 10.42.0.0/16",
        "unreachable 2001:db8:42::/48",
      ]);
      await p.removeLeftovers(left);
      await p.removeLeftovers(left); // idempotent
      // A sysctl is not a leftover: nothing tells who changed it, so it stays as the node set it.
      assert.equal(await p.getSysctl("net.ipv6.conf.all.forwarding"), "0");
      assert.deepEqual(await p.listLeftovers({ networks: NETWORKS }), {
        addresses: [],
        routes: [],
        taps: [],
      });
      assert.equal(await snapshot(host.runner), before);
    } finally {
      await lab.cleanup();
    }
  },
});

Deno.test({
  name: "OpenVPN attaches to a tap made by the platform",
  ...opts,
  fn: async () => {
    const lab = await createLab("platform-tap");
    const log = await Deno.makeTempFile({ prefix: "r6-openvpn-" });
    try {
      const host = await lab.addHost("node");
      const p = createLinuxPlatform(host.runner);
      await p.createTap("re6stnet5");
      const ovpn = lab.spawn("node", [
        "openvpn",
        "--dev",
        "re6stnet5",
        "--dev-type",
        "tap",
        "--persist-tun",
        "--ifconfig-noexec",
        "--data-ciphers",
        "none",
        "--cipher",
        "none",
        "--verb",
        "3",
      ], { log });
      await lab.waitFor(
        async () => (await Deno.readTextFile(log)).includes("TUN/TAP device re6stnet5 opened"),
        { what: "OpenVPN to open tap re6stnet5", timeoutMs: 10_000 },
      );
      await ovpn.stop();
      await p.undoAll();
      const r = await host.runner.run(["ip", "link", "show", "dev", "re6stnet5"], { ok: [1] });
      assert.match(r.stderr, /does not exist/);
    } finally {
      await lab.cleanup();
      await Deno.remove(log);
    }
  },
});
