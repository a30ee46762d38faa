// The Linux kernel of a node (platform/linux.ts) in a real namespace: a node's state is made
// and removed exactly, drained taps drop Babel through nftables, a fresh kernel clears what a
// killed one left (its journal and babeld's routes), and OpenVPN attaches to its taps.
import assert from "node:assert/strict";
import { EMPTY_KERNEL_STATE, type KernelState } from "../../core/kernel.ts";
import { fileJournal } from "../../platform/journal.ts";
import { createLinuxKernel } from "../../platform/linux.ts";
import type { Runner } from "../../platform/runner.ts";
import { createLab, isRoot } from "./lab.ts";

const opts = { ignore: !isRoot, sanitizeOps: true, sanitizeResources: true };
const NETWORKS = ["2001:db8:42::/48", "10.42.0.0/16"];

/** Addresses, routes (all tables), links and nftables tables of a namespace, as text. */
async function snapshot(r: Runner): Promise<string> {
  const out = [];
  for (
    const argv of [
      ["ip", "-o", "addr", "show"],
      ["ip", "-6", "route", "show", "table", "all"],
      ["ip", "-4", "route", "show", "table", "all"],
      ["ip", "-o", "link", "show"],
      ["nft", "list", "tables"],
    ]
  ) out.push((await r.run(argv)).stdout);
  return out.join("---\n");
}

/** What a node wants once started (PROTOCOL §7.1 steps 8-10) plus a tunnel tap, drained. */
const STARTED: KernelState = {
  taps: ["re6stnet0"],
  addresses: [
    { address: "2001:db8:42:6::1/64", dev: "lo" },
    { address: "10.42.1.1/24", dev: "lo" },
  ],
  routes: [
    { type: "unreachable", dst: "2001:db8:42::/48" },
    { type: "unreachable", dst: "10.42.0.0/16", proto: "static" },
    { dst: "2001:db8:42:9::/64", from: "2001:db8:42::/48", dev: "lo" },
  ],
  drained: ["re6stnet0"],
};

Deno.test({
  name: "the Linux kernel makes a node's state visible in the namespace and removes it all",
  ...opts,
  fn: async () => {
    const lab = await createLab("platform");
    try {
      const host = await lab.addHost("node");
      const before = await snapshot(host.runner);
      const k = createLinuxKernel(host.runner);
      assert.equal(await k.hasSourceRouting(), true);
      await k.apply(STARTED);
      await k.apply(STARTED); // idempotent

      const addr = (await host.runner.run(["ip", "-o", "addr", "show", "dev", "lo"])).stdout;
      assert.match(addr, /inet6 2001:db8:42:6::1\/64/);
      assert.match(addr, /inet 10\.42\.1\.1\/24/);
      const r6 = (await host.runner.run(["ip", "-6", "route", "show"])).stdout;
      assert.match(r6, /^unreachable 2001:db8:42::\/48 dev lo/m);
      assert.match(r6, /^2001:db8:42:9::\/64 from 2001:db8:42::\/48 dev lo/m);
      const r4 = (await host.runner.run(["ip", "-4", "route", "show"])).stdout;
      assert.match(r4, /^unreachable 10\.42\.0\.0\/16 proto static/m);
      const link = (await host.runner.run(["ip", "-d", "link", "show", "dev", "re6stnet0"])).stdout;
      assert.match(link, /tun type tap pi off/);
      const nft = (await host.runner.run(["nft", "list", "set", "inet", "re6st_drain", "taps"]))
        .stdout;
      assert.match(nft, /elements = \{ "?re6stnet0"? \}/);
      assert.equal(k.changes().length, 7);

      await k.apply(EMPTY_KERNEL_STATE);
      await k.clearLeftovers({ networks: NETWORKS });
      assert.equal(await snapshot(host.runner), before);
    } finally {
      await lab.cleanup();
    }
  },
});

Deno.test({
  name:
    "a fresh kernel removes what a killed node journaled and babeld's routes, not the operator's",
  ...opts,
  fn: async () => {
    const lab = await createLab("platform-kill");
    const dir = await Deno.makeTempDir({ prefix: "r6-journal-" });
    try {
      const host = await lab.addHost("node");
      const before = await snapshot(host.runner);
      const journal = `${dir}/kernel-journal.json`;
      // The killed node: its state, journaled, never undone.
      await createLinuxKernel(host.runner, { journal }).apply(STARTED);
      // What its babeld installed (proto babel), and the operator's route in the network.
      const run = (argv: string[]) => host.runner.run(argv);
      await run(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
      await run(["ip", "link", "set", "eth0", "up"]);
      await run([
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8:42:7::/64",
        "dev",
        "eth0",
        "proto",
        "babel",
      ]);
      await run([
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8:42:fe::/64",
        "dev",
        "eth0",
        "proto",
        "static",
      ]);

      const k = createLinuxKernel(host.runner, { journal });
      const removed = await k.clearLeftovers({ networks: NETWORKS });
      assert.equal(removed.length, 9, removed.join(", "));
      assert.ok(removed.includes("the nftables drain table"));
      assert.ok(removed.includes("route 2001:db8:42:7::/64 dev eth0 proto babel"));
      assert.deepEqual(await fileJournal(journal).load(), []);
      assert.deepEqual(await k.clearLeftovers({ networks: NETWORKS }), [], "idempotent");
      const r6 = (await host.runner.run(["ip", "-6", "route", "show"])).stdout;
      assert.match(r6, /^2001:db8:42:fe::\/64 dev eth0 proto static/m, "the operator's stays");
      await run(["ip", "link", "del", "eth0"]);
      assert.equal(await snapshot(host.runner), before);
    } finally {
      await lab.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "OpenVPN attaches to a tap made by the kernel",
  ...opts,
  fn: async () => {
    const lab = await createLab("platform-tap");
    const log = await Deno.makeTempFile({ prefix: "r6-openvpn-" });
    try {
      const host = await lab.addHost("node");
      const k = createLinuxKernel(host.runner);
      await k.apply({ ...EMPTY_KERNEL_STATE, taps: ["re6stnet5"] });
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
      await k.apply(EMPTY_KERNEL_STATE);
      const r = await host.runner.run(["ip", "link", "show", "dev", "re6stnet5"], { ok: [1] });
      assert.match(r.stderr, /does not exist/);
    } finally {
      await lab.cleanup();
      await Deno.remove(log);
    }
  },
});
