import assert from "node:assert/strict";
import {
  canonicalAddress,
  canonicalNetwork,
  prefixContains,
  routeKey,
} from "../../platform/cidr.ts";
import { createRecorderPlatform } from "../../platform/recorder.ts";
import { CommandError } from "../../platform/runner.ts";
import type { Platform } from "../../platform/types.ts";

const NODE_IP = { address: "2001:db8:42:6::1/64", dev: "lo" };
const NETWORK_ROUTE = { type: "unreachable" as const, dst: "2001:db8:42::/48" };
const V4_ROUTE = { type: "unreachable" as const, dst: "10.42.0.0/16", proto: "static" };

/** What a node does at start (PROTOCOL §7.1 steps 4, 8, 10). */
async function start(p: Platform) {
  await p.hasSourceRouting();
  await p.addRoute(V4_ROUTE);
  await p.createTap("re6stnet0");
  await p.addAddress(NODE_IP);
  await p.removeLoopbackLinkLocalRoute();
  await p.addRoute(NETWORK_ROUTE);
}

Deno.test("the recorder lists a node's start and teardown as exact command lines", async () => {
  const p = createRecorderPlatform({ loopbackLinkLocalRoute: true });
  await start(p);
  assert.deepEqual(p.ops, [
    "ip -6 route add unreachable ::/128 from ::/128",
    "ip -6 route del unreachable ::/128 from ::/128",
    "ip -4 route add unreachable 10.42.0.0/16 proto static",
    "ip tuntap add dev re6stnet0 mode tap",
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
    "ip -6 route del fe80::/64 dev lo",
    "ip -6 route add unreachable 2001:db8:42::/48",
  ]);
  assert.deepEqual(p.state(), [
    "address 2001:db8:42:6::1/64 dev lo",
    "link lo other up mtu 65536",
    "link re6stnet0 tap down mtu 1500",
    "route unreachable 10.42.0.0/16 proto static",
    "route unreachable 2001:db8:42::/48",
  ]);
  p.ops.length = 0;
  await p.undoAll();
  assert.deepEqual(p.ops, [
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet0",
    "ip -4 route del unreachable 10.42.0.0/16 proto static",
  ]);
  assert.deepEqual(p.state(), ["link lo other up mtu 65536"]);
});

Deno.test("the recorder behaves like the kernel for duplicates and missing objects", async () => {
  const p = createRecorderPlatform();
  assert.equal(await p.addAddress(NODE_IP), true);
  assert.equal(await p.addAddress({ address: "2001:db8:42:6:0::1/64", dev: "lo" }), false);
  assert.equal(await p.addRoute(NETWORK_ROUTE), true);
  assert.equal(await p.addRoute({ ...NETWORK_ROUTE, proto: "static" }), false);
  assert.equal(await p.removeRoute({ dst: "2001:db8:77::/48" }), false);
  assert.equal(await p.removeLoopbackLinkLocalRoute(), false);
  await assert.rejects(p.addAddress({ address: "10.0.0.1/8", dev: "eth9" }), /Cannot find device/);
  await assert.rejects(p.createTap("lo"), /Device or resource busy/);
  assert.equal(p.changes().length, 2);
});

Deno.test("deleting a tap takes its addresses and routes with it", async () => {
  const p = createRecorderPlatform();
  await p.createTap("re6stnet1");
  await p.setLink("re6stnet1", { up: true, mtu: 1400 });
  await p.addRoute({ dst: "2001:db8:42:9::/64", via: "fe80::2", dev: "re6stnet1" });
  assert.ok(p.state().includes("link re6stnet1 tap up mtu 1400"));
  assert.equal(await p.deleteTap("re6stnet1"), true);
  assert.deepEqual(p.state(), ["link lo other up mtu 65536"]);
  // The journal forgot the tap; the route entry is removed idempotently at undo.
  await p.undoAll();
  assert.deepEqual(p.changes(), []);
});

Deno.test("a kernel without subtrees fails the probe and source-specific routes", async () => {
  const p = createRecorderPlatform({ sourceRouting: false });
  assert.equal(await p.hasSourceRouting(), false);
  assert.deepEqual(p.ops, ["ip -6 route add unreachable ::/128 from ::/128"]);
  await assert.rejects(
    p.addRoute({ dst: "default", from: "2001:db8:42::/48", dev: "lo" }),
    /Operation not supported/,
  );
});

Deno.test("apply converges to the desired state and removes only what it added", async () => {
  const p = createRecorderPlatform({ links: ["lo", "eth0"] });
  // Someone else's route, already present: apply must never remove it.
  p.model.routes.push({ dst: "2001:db8:99::/48", dev: "eth0" });

  await p.apply({
    taps: ["re6stnet0"],
    addresses: [NODE_IP],
    routes: [NETWORK_ROUTE, { dst: "2001:db8:99::/48", dev: "eth0" }],
  });
  await p.apply({
    taps: ["re6stnet0"],
    addresses: [NODE_IP],
    routes: [NETWORK_ROUTE, { dst: "2001:db8:99::/48", dev: "eth0" }],
  });
  await p.apply({ addresses: [{ address: "2001:db8:42:7::1/64", dev: "lo" }] });
  assert.deepEqual(p.ops, [
    "ip tuntap add dev re6stnet0 mode tap",
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
    "ip -6 route add unreachable 2001:db8:42::/48",
    "ip -6 route add 2001:db8:99::/48 dev eth0",
    // Second apply: only the route it does not own is tried again.
    "ip -6 route add 2001:db8:99::/48 dev eth0",
    // Third apply: newest first.
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet0",
    "ip -6 addr add 2001:db8:42:7::1/64 dev lo",
  ]);
  assert.deepEqual(p.state(), [
    "address 2001:db8:42:7::1/64 dev lo",
    "link eth0 other up mtu 65536",
    "link lo other up mtu 65536",
    "route 2001:db8:99::/48 dev eth0",
  ]);
});

Deno.test("sysctls are restored to the value found before the first change", async () => {
  const p = createRecorderPlatform({ sysctls: { "net.ipv6.conf.all.forwarding": "0" } });
  await p.setSysctl("net.ipv6.conf.all.forwarding", "1");
  await p.setSysctl("net.ipv6.conf.all.forwarding", "2");
  await p.setSysctl("net.ipv6.conf.all.forwarding", "2");
  assert.deepEqual(p.state(), [
    "link lo other up mtu 65536",
    "sysctl net.ipv6.conf.all.forwarding=2",
  ]);
  await p.undoAll();
  assert.deepEqual(p.ops, [
    "sysctl -q -w net.ipv6.conf.all.forwarding=1",
    "sysctl -q -w net.ipv6.conf.all.forwarding=2",
    "sysctl -q -w net.ipv6.conf.all.forwarding=0",
  ]);
  assert.equal(await p.getSysctl("net.ipv6.conf.all.forwarding"), "0");
});

Deno.test("leftovers of a killed node are found and removed without touching the rest", async () => {
  const crashed = createRecorderPlatform({ links: ["lo", "eth0"] });
  await start(crashed);
  await crashed.addAddress({ address: "2001:db8:99::5/64", dev: "eth0" });
  await crashed.addRoute({
    dst: "2001:db8:42:9::/64",
    via: "fe80::2",
    dev: "re6stnet0",
    proto: "babel",
  });
  // A new node process sees the same kernel but has an empty journal.
  const fresh = createRecorderPlatform();
  Object.assign(fresh.model, crashed.model);
  const l = await fresh.listLeftovers({ networks: ["2001:db8:42::/48", "10.42.0.0/16"] });
  assert.deepEqual(l.taps, ["re6stnet0"]);
  assert.deepEqual(l.addresses, [NODE_IP]);
  assert.equal(l.routes.length, 3);
  await fresh.removeLeftovers(l);
  assert.deepEqual(fresh.changes(), []);
  assert.deepEqual(fresh.state(), [
    "address 2001:db8:99::5/64 dev eth0",
    "link eth0 other up mtu 65536",
    "link lo other up mtu 65536",
  ]);
});

Deno.test("an injected failure raises a CommandError and is still recorded", async () => {
  const p = createRecorderPlatform({
    fail: (line) => line.includes("addr add") ? "RTNETLINK answers: Permission denied" : undefined,
  });
  await assert.rejects(p.addAddress(NODE_IP), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, 2);
    return true;
  });
  assert.deepEqual(p.ops, ["ip -6 addr add 2001:db8:42:6::1/64 dev lo"]);
  assert.deepEqual(p.changes(), []);
});

Deno.test("prefix helpers normalise text and test containment", () => {
  assert.equal(canonicalAddress("2001:DB8:0042:0006:0::1/64"), "2001:db8:42:6::1/64");
  assert.equal(canonicalNetwork("2001:db8:42:6::1/48"), "2001:db8:42::/48");
  assert.equal(canonicalNetwork("10.42.1.1/16"), "10.42.0.0/16");
  assert.equal(canonicalNetwork("default", 4), "0.0.0.0/0");
  assert.ok(prefixContains("2001:db8:42::/48", "2001:db8:42:6::1"));
  assert.ok(prefixContains("2001:db8:42::/48", "2001:db8:42::/48"));
  assert.ok(!prefixContains("2001:db8:42::/48", "2001:db8::/32"));
  assert.ok(!prefixContains("2001:db8:42::/48", "10.42.0.1"));
  assert.ok(prefixContains("10.42.0.0/16", "10.42.255.1/24"));
  assert.equal(
    routeKey({ dst: "2001:db8:42::1/48", table: "main" }),
    routeKey({ dst: "2001:db8:42::/48" }),
  );
  assert.throws(() => canonicalAddress("2001:db8::/129"), /Invalid prefix/);
});
