import assert from "node:assert/strict";
import { EMPTY_KERNEL_STATE, type KernelState } from "../../core/kernel.ts";
import {
  addressArgv,
  createLinuxKernel,
  linuxKernelOps as linuxKernel,
  routeArgv,
  routeFromJson,
  tapArgv,
} from "../../platform/linux.ts";
import { CommandError, type RecordedReply, recordingRunner } from "../../platform/runner.ts";

/** A state with defaults for what is not given. */
function state(s: Partial<KernelState>): KernelState {
  return { ...EMPTY_KERNEL_STATE, ...s };
}

/** A recording runner answering from a table keyed by the command line. */
function scripted(replies: Record<string, RecordedReply> = {}, netns?: string) {
  return recordingRunner((argv) => replies[argv.join(" ")], netns);
}

Deno.test("argv builders produce the reference command lines of PROTOCOL §8.2", () => {
  assert.deepEqual(
    addressArgv("add", { address: "2001:db8:42:6::1/64", dev: "lo" }).join(" "),
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
  );
  assert.deepEqual(
    routeArgv("add", { type: "unreachable", dst: "2001:db8:42::/48" }).join(" "),
    "ip -6 route add unreachable 2001:db8:42::/48",
  );
  assert.deepEqual(
    routeArgv("add", { type: "unreachable", dst: "10.42.0.0/16", proto: "static" }).join(" "),
    "ip -4 route add unreachable 10.42.0.0/16 proto static",
  );
  assert.deepEqual(
    routeArgv("del", { dst: "2001:db8:42:6::/64", dev: "lo" }).join(" "),
    "ip -6 route del 2001:db8:42:6::/64 dev lo",
  );
  assert.deepEqual(
    routeArgv("add", {
      dst: "default",
      from: "2001:db8:42::/48",
      via: "fe80::1",
      dev: "re6stnet0",
      proto: "static",
      table: 7,
      metric: 10,
    }).join(" "),
    "ip -6 route add default from 2001:db8:42::/48 via fe80::1 dev re6stnet0 proto static" +
      " table 7 metric 10",
  );
  assert.equal(
    routeArgv("add", { dst: "198.51.100.7/32", via: "10.0.0.1" }).join(" "),
    "ip -4 route add 198.51.100.7/32 via 10.0.0.1",
  );
  assert.equal(tapArgv("add", "re6stnet3").join(" "), "ip tuntap add dev re6stnet3 mode tap");
  assert.equal(tapArgv("del", "re6stnet3").join(" "), "ip link del dev re6stnet3");
});

Deno.test("adding something that exists reports false and is not journaled", async () => {
  const runner = scripted({
    "ip -6 addr add 2001:db8::1/64 dev lo": {
      code: 2,
      stderr: "Error: ipv6: address already assigned.\n",
    },
    "ip -6 route add unreachable 2001:db8::/48": {
      code: 2,
      stderr: "RTNETLINK answers: File exists\n",
    },
  });
  const p = createLinuxKernel(runner);
  const want = state({
    addresses: [{ address: "2001:db8::1/64", dev: "lo" }],
    routes: [{ type: "unreachable", dst: "2001:db8::/48" }],
  });
  await p.apply(want);
  await p.apply(want);
  assert.deepEqual(p.changes(), []);
  await p.apply(EMPTY_KERNEL_STATE);
  assert.equal(runner.calls.length, 2, "tried once, never removed");
});

Deno.test("removing something already gone reports false instead of failing", async () => {
  const k = linuxKernel(scripted({
    "ip -6 addr del 2001:db8::1/64 dev lo": {
      code: 2,
      stderr: "Error: ipv6: address not found.\n",
    },
    "ip -4 addr del 10.0.0.1/24 dev lo": { code: 2, stderr: "Error: ipv4: Address not found.\n" },
    "ip -6 route del 2001:db8::/48 dev lo": {
      code: 2,
      stderr: "RTNETLINK answers: No such process\n",
    },
    "ip link del dev re6stnet1": { code: 1, stderr: 'Cannot find device "re6stnet1"\n' },
    "ip -6 route del fe80::/64 dev lo": { code: 2, stderr: "RTNETLINK answers: No such process\n" },
  }));
  assert.equal(await k.removeAddress({ address: "2001:db8::1/64", dev: "lo" }), false);
  assert.equal(await k.removeAddress({ address: "10.0.0.1/24", dev: "lo" }), false);
  assert.equal(await k.removeRoute({ dst: "2001:db8::/48", dev: "lo" }), false);
  assert.equal(await k.deleteTap("re6stnet1"), false);
  assert.equal(await k.removeLoopbackLinkLocalRoute(), false);
});

Deno.test("other failures raise a CommandError naming the command", async () => {
  const p = createLinuxKernel(scripted({
    "ip -6 addr add 2001:db8::1/64 dev eth9": { code: 1, stderr: 'Cannot find device "eth9"\n' },
  }, "r6-test"));
  const want = state({ addresses: [{ address: "2001:db8::1/64", dev: "eth9" }] });
  await assert.rejects(p.apply(want), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.deepEqual(e.argv, [
      "ip",
      "netns",
      "exec",
      "r6-test",
      ..."ip -6 addr add 2001:db8::1/64 dev eth9".split(" "),
    ]);
    assert.equal(e.code, 1);
    assert.match(e.message, /Cannot find device "eth9"/);
    return true;
  });
});

Deno.test("the source-routing probe adds then deletes the ::/128 from ::/128 route", async () => {
  const yes = scripted();
  assert.equal(await linuxKernel(yes).hasSourceRouting(), true);
  assert.deepEqual(yes.lines(), [
    "ip -6 route add unreachable ::/128 from ::/128",
    "ip -6 route del unreachable ::/128 from ::/128",
  ]);
  const no = scripted({
    "ip -6 route add unreachable ::/128 from ::/128": {
      code: 2,
      stderr: "RTNETLINK answers: Operation not supported\n",
    },
  });
  assert.equal(await linuxKernel(no).hasSourceRouting(), false);
  assert.equal(no.calls.length, 1);
});

Deno.test("creating a tap that already exists as a tap reports false", async () => {
  const tapJson = JSON.stringify([{
    ifname: "re6stnet0",
    linkinfo: { info_kind: "tun", info_data: { type: "tap" } },
  }]);
  const r = scripted({
    "ip tuntap add dev re6stnet0 mode tap": {
      code: 1,
      stderr: "ioctl(TUNSETIFF): Device or resource busy\n",
    },
    "ip -j -d link show dev re6stnet0": { stdout: tapJson },
    "ip tuntap add dev lo mode tap": {
      code: 1,
      stderr: "ioctl(TUNSETIFF): Device or resource busy\n",
    },
    "ip -j -d link show dev lo": { stdout: JSON.stringify([{ ifname: "lo" }]) },
  });
  const k = linuxKernel(r);
  assert.equal(await k.createTap("re6stnet0"), false);
  await assert.rejects(k.createTap("lo"), CommandError);
});

Deno.test("the empty state removes exactly what was added, newest first, once", async () => {
  const r = scripted();
  const p = createLinuxKernel(r);
  await p.apply(state({
    taps: ["re6stnet0"],
    addresses: [{ address: "2001:db8:42:6::1/64", dev: "lo" }],
    routes: [{ type: "unreachable", dst: "2001:db8:42::/48" }],
    drained: ["re6stnet0"],
  }));
  const start = r.lines();
  assert.deepEqual(start, [
    "ip tuntap add dev re6stnet0 mode tap",
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
    "ip -6 route add unreachable 2001:db8:42::/48",
    "nft delete table inet re6st_drain",
    "nft -f -",
    "nft add element inet re6st_drain taps { re6stnet0 }",
  ]);
  await p.apply(EMPTY_KERNEL_STATE);
  await p.apply(EMPTY_KERNEL_STATE);
  assert.deepEqual(r.lines().slice(start.length), [
    "nft delete element inet re6st_drain taps { re6stnet0 }",
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet0",
  ]);
  assert.deepEqual(p.changes(), []);
});

Deno.test("a failed removal stays journaled so the next apply retries it", async () => {
  let fail = true;
  const r = recordingRunner((argv) =>
    fail && argv.join(" ") === "ip -6 addr del 2001:db8::1/64 dev lo"
      ? { code: 2, stderr: "RTNETLINK answers: Operation not permitted\n" }
      : undefined
  );
  const p = createLinuxKernel(r);
  await p.apply(state({
    addresses: [{ address: "2001:db8::1/64", dev: "lo" }],
    routes: [{ type: "unreachable", dst: "2001:db8::/48" }],
  }));
  await assert.rejects(p.apply(EMPTY_KERNEL_STATE), /Operation not permitted/);
  assert.deepEqual(p.changes(), [{
    kind: "address",
    spec: { address: "2001:db8::1/64", dev: "lo" },
  }]);
  fail = false;
  await p.apply(EMPTY_KERNEL_STATE);
  assert.deepEqual(p.changes(), []);
});

Deno.test("babeld's routes inside the networks are found in ip -j output and removed", async () => {
  const route6 = [
    { dst: "2001:db8:42:6::/64", dev: "lo", protocol: "kernel", metric: 256 },
    { type: "unreachable", dst: "2001:db8:42::/48", dev: "lo", metric: 1024 },
    {
      dst: "2001:db8:42:9::/64",
      gateway: "fe80::2",
      dev: "eth0",
      protocol: "babel",
      metric: 1024,
    },
    {
      dst: "default",
      from: "2001:db8:42::/48",
      gateway: "fe80::3",
      dev: "eth0",
      protocol: "babel",
      table: "9",
    },
    { dst: "2001:db8:99::/64", gateway: "fe80::4", dev: "eth0", protocol: "babel" },
    { type: "local", dst: "2001:db8:42:6::1", dev: "lo", table: "local", protocol: "kernel" },
  ];
  const route4 = [
    { type: "unreachable", dst: "10.42.0.0/16", protocol: "static" },
    { dst: "10.42.7.0/24", gateway: "10.0.0.7", dev: "eth0", protocol: "babel" },
  ];
  const r = scripted({
    "ip -j -6 route show table all": { stdout: JSON.stringify(route6) },
    "ip -j -4 route show table all": { stdout: JSON.stringify(route4) },
    "nft delete table inet re6st_drain": { code: 1, stderr: "Error: No such file or directory\n" },
  });
  const removed = await createLinuxKernel(r).clearLeftovers({
    networks: ["2001:db8:42::/48", "10.42.0.0/16"],
  });
  assert.deepEqual(removed, [
    "route 2001:db8:42:9::/64 via fe80::2 dev eth0 proto babel",
    "route default from 2001:db8:42::/48 via fe80::3 dev eth0 proto babel table 9",
    "route 10.42.7.0/24 via 10.0.0.7 dev eth0 proto babel",
  ]);
  assert.deepEqual(r.lines().filter((l) => / del /.test(l)), [
    "ip -6 route del 2001:db8:42:9::/64 via fe80::2 dev eth0 proto babel metric 1024",
    "ip -6 route del default from 2001:db8:42::/48 via fe80::3 dev eth0 proto babel table 9",
    "ip -4 route del 10.42.7.0/24 via 10.0.0.7 dev eth0 proto babel",
  ]);
});

Deno.test("routeFromJson skips kernel-only route types", () => {
  assert.equal(routeFromJson({ type: "multicast", dst: "ff00::/8" }, 6), null);
  assert.deepEqual(routeFromJson({ type: "blackhole", dst: "10.0.0.0/8", dev: "lo" }, 4), {
    dst: "10.0.0.0/8",
    family: 4,
    type: "blackhole",
  });
});
