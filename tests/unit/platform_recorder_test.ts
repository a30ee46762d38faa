// The recorder kernel (platform/recorder.ts) under the journal (platform/journal.ts): what a
// node's desired states turn into, as exact command lines, and the kernel's own behaviour.
import assert from "node:assert/strict";
import { canonicalAddress, canonicalNetwork, prefixContains, routeKey } from "../../core/cidr.ts";
import { EMPTY_KERNEL_STATE, type KernelState } from "../../core/kernel.ts";
import { createRecorderKernel } from "../../platform/recorder.ts";
import { CommandError } from "../../platform/runner.ts";

const NODE_IP = { address: "2001:db8:42:6::1/64", dev: "lo" };
const NETWORK_ROUTE = { type: "unreachable" as const, dst: "2001:db8:42::/48" };
const V4_ROUTE = { type: "unreachable" as const, dst: "10.42.0.0/16", proto: "static" };

/** A state with defaults for what is not given. */
function state(s: Partial<KernelState>): KernelState {
  return { ...EMPTY_KERNEL_STATE, ...s };
}

/** What a node wants once started (PROTOCOL §7.1 steps 8-10). */
const STARTED = state({
  taps: ["re6stnet0"],
  addresses: [NODE_IP],
  routes: [V4_ROUTE, NETWORK_ROUTE],
});

Deno.test("a node's state and the empty state become exact command lines, undone newest first", async () => {
  const k = createRecorderKernel({ loopbackLinkLocalRoute: true });
  assert.equal(await k.hasSourceRouting(), true);
  await k.apply(STARTED);
  assert.equal(await k.removeLoopbackLinkLocalRoute(), true);
  assert.deepEqual(k.ops, [
    "ip -6 route add unreachable ::/128 from ::/128",
    "ip -6 route del unreachable ::/128 from ::/128",
    "ip tuntap add dev re6stnet0 mode tap",
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
    "ip -4 route add unreachable 10.42.0.0/16 proto static",
    "ip -6 route add unreachable 2001:db8:42::/48",
    "ip -6 route del fe80::/64 dev lo",
  ]);
  assert.deepEqual(k.state(), [
    "address 2001:db8:42:6::1/64 dev lo",
    "link lo other up mtu 65536",
    "link re6stnet0 tap down mtu 1500",
    "route unreachable 10.42.0.0/16 proto static",
    "route unreachable 2001:db8:42::/48",
  ]);
  assert.deepEqual(k.owned(), [
    "tap re6stnet0",
    "address 2001:db8:42:6::1/64 on lo",
    "route unreachable 10.42.0.0/16 proto static",
    "route unreachable 2001:db8:42::/48",
  ]);
  k.ops.length = 0;
  await k.apply(EMPTY_KERNEL_STATE);
  await k.apply(EMPTY_KERNEL_STATE);
  assert.deepEqual(k.ops, [
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -4 route del unreachable 10.42.0.0/16 proto static",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet0",
  ]);
  assert.deepEqual(k.state(), ["link lo other up mtu 65536"]);
  assert.deepEqual(k.changes(), []);
});

Deno.test("what was there before is left to its owner; a missing device or a busy name fails", async () => {
  const k = createRecorderKernel();
  k.model.addresses.push({ address: "2001:db8:42:6::1/64", dev: "lo" }); // the operator's
  await k.apply(state({ addresses: [{ address: "2001:db8:42:6:0::1/64", dev: "lo" }] }));
  await k.apply(EMPTY_KERNEL_STATE);
  assert.deepEqual(k.state(), ["address 2001:db8:42:6::1/64 dev lo", "link lo other up mtu 65536"]);
  await assert.rejects(
    k.apply(state({ addresses: [{ address: "10.0.0.1/8", dev: "eth9" }] })),
    /Cannot find device/,
  );
  await assert.rejects(k.apply(state({ taps: ["lo"] })), /Device or resource busy/);
  assert.equal(await k.removeLoopbackLinkLocalRoute(), false);
  assert.deepEqual(k.changes(), []);
});

Deno.test("deleting a tap takes its routes with it, and the journal does not mind", async () => {
  const k = createRecorderKernel();
  const via = { dst: "2001:db8:42:9::/64", via: "fe80::2", dev: "re6stnet1" };
  await k.apply(state({ taps: ["re6stnet1"], routes: [via] }));
  assert.ok(k.state().includes("route 2001:db8:42:9::/64 via fe80::2 dev re6stnet1"));
  k.model.links.delete("re6stnet1"); // gone behind the node's back
  k.model.routes.length = 0;
  await k.apply(EMPTY_KERNEL_STATE);
  assert.deepEqual(k.changes(), []);
  assert.deepEqual(k.state(), ["link lo other up mtu 65536"]);
});

Deno.test("a kernel without subtrees fails the probe and source-specific routes", async () => {
  const k = createRecorderKernel({ sourceRouting: false });
  assert.equal(await k.hasSourceRouting(), false);
  assert.deepEqual(k.ops, ["ip -6 route add unreachable ::/128 from ::/128"]);
  await assert.rejects(
    k.apply(state({ routes: [{ dst: "default", from: "2001:db8:42::/48", dev: "lo" }] })),
    /Operation not supported/,
  );
});

Deno.test("apply converges to the desired state and tries someone else's object once", async () => {
  const k = createRecorderKernel({ links: ["lo", "eth0"] });
  // Someone else's route, already present: apply must never remove it.
  k.model.routes.push({ dst: "2001:db8:99::/48", dev: "eth0" });
  const want = state({
    taps: ["re6stnet0"],
    addresses: [NODE_IP],
    routes: [NETWORK_ROUTE, { dst: "2001:db8:99::/48", dev: "eth0" }],
  });
  await k.apply(want);
  await k.apply(want);
  await k.apply(state({ addresses: [{ address: "2001:db8:42:7::1/64", dev: "lo" }] }));
  assert.deepEqual(k.ops, [
    "ip tuntap add dev re6stnet0 mode tap",
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
    "ip -6 route add unreachable 2001:db8:42::/48",
    "ip -6 route add 2001:db8:99::/48 dev eth0",
    // Third apply: newest first.
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet0",
    "ip -6 addr add 2001:db8:42:7::1/64 dev lo",
  ]);
  assert.deepEqual(k.state(), [
    "address 2001:db8:42:7::1/64 dev lo",
    "link eth0 other up mtu 65536",
    "link lo other up mtu 65536",
    "route 2001:db8:99::/48 dev eth0",
  ]);
});

Deno.test("drained taps drop Babel through nftables until they are no longer wanted", async () => {
  const k = createRecorderKernel();
  await k.apply(state({ taps: ["re6stnet1", "re6stnet2"], drained: ["re6stnet2"] }));
  assert.ok(k.state().includes("drained re6stnet2"));
  await k.apply(state({ taps: ["re6stnet1", "re6stnet2"] }));
  assert.ok(!k.state().some((l) => l.startsWith("drained")));
  assert.deepEqual(k.ops.filter((l) => l.startsWith("nft")), [
    "nft add element inet re6st_drain taps { re6stnet2 }",
    "nft delete element inet re6st_drain taps { re6stnet2 }",
  ]);
});

Deno.test("a failed change raises a CommandError, is still recorded, and the others are made", async () => {
  const k = createRecorderKernel({
    fail: (line) => line.includes("addr add") ? "RTNETLINK answers: Permission denied" : undefined,
  });
  await assert.rejects(k.apply(state({ addresses: [NODE_IP], routes: [NETWORK_ROUTE] })), (e) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, 2);
    return true;
  });
  assert.deepEqual(k.ops, [
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
    "ip -6 route add unreachable 2001:db8:42::/48",
  ]);
  assert.deepEqual(k.owned(), ["route unreachable 2001:db8:42::/48"]);
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
