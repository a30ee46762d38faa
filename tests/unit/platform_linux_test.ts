import assert from "node:assert/strict";
import {
  addressArgv,
  createLinuxPlatform,
  linkArgv,
  linuxKernel,
  routeArgv,
  routeFromJson,
  tapArgv,
} from "../../platform/linux.ts";
import { CommandError, type RecordedReply, recordingRunner } from "../../platform/runner.ts";

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
  assert.equal(
    linkArgv("re6stnet3", { up: true, mtu: 1400 }).join(" "),
    "ip link set dev re6stnet3 up mtu 1400",
  );
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
  const p = createLinuxPlatform(runner);
  assert.equal(await p.addAddress({ address: "2001:db8::1/64", dev: "lo" }), false);
  assert.equal(await p.addRoute({ type: "unreachable", dst: "2001:db8::/48" }), false);
  assert.deepEqual(p.changes(), []);
  await p.undoAll();
  assert.equal(runner.calls.length, 2);
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
  const p = createLinuxPlatform(scripted({
    "ip -6 addr add 2001:db8::1/64 dev eth9": { code: 1, stderr: 'Cannot find device "eth9"\n' },
  }, "r6-test"));
  await assert.rejects(p.addAddress({ address: "2001:db8::1/64", dev: "eth9" }), (e: unknown) => {
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

Deno.test("undoAll removes exactly what was added, newest first, once", async () => {
  const r = scripted({
    "sysctl -n net.ipv6.conf.all.forwarding": { stdout: "0\n" },
  });
  const p = createLinuxPlatform(r);
  await p.setSysctl("net.ipv6.conf.all.forwarding", "1");
  await p.createTap("re6stnet0");
  await p.setLink("re6stnet0", { up: true, mtu: 1400 });
  await p.addAddress({ address: "2001:db8:42:6::1/64", dev: "lo" });
  await p.removeLoopbackLinkLocalRoute();
  await p.addRoute({ type: "unreachable", dst: "2001:db8:42::/48" });
  const start = r.lines();
  await p.undoAll();
  await p.undoAll();
  assert.deepEqual(r.lines().slice(start.length), [
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet0",
    "sysctl -q -w net.ipv6.conf.all.forwarding=0",
  ]);
  assert.deepEqual(p.changes(), []);
});

Deno.test("a failed undo stays journaled so a second undoAll retries it", async () => {
  let fail = true;
  const r = recordingRunner((argv) =>
    fail && argv.join(" ") === "ip -6 addr del 2001:db8::1/64 dev lo"
      ? { code: 2, stderr: "RTNETLINK answers: Operation not permitted\n" }
      : undefined
  );
  const p = createLinuxPlatform(r);
  await p.addAddress({ address: "2001:db8::1/64", dev: "lo" });
  await p.addRoute({ type: "unreachable", dst: "2001:db8::/48" });
  await assert.rejects(p.undoAll(), AggregateError);
  assert.deepEqual(p.changes(), [{
    kind: "address",
    spec: { address: "2001:db8::1/64", dev: "lo" },
  }]);
  fail = false;
  await p.undoAll();
  assert.deepEqual(p.changes(), []);
});

Deno.test("leftovers are parsed from ip -j output and filtered by network and tap name", async () => {
  const addr = [
    {
      ifname: "lo",
      addr_info: [
        { family: "inet6", local: "2001:db8:42:6::1", prefixlen: 64 },
        { family: "inet6", local: "::1", prefixlen: 128 },
        { family: "inet", local: "10.42.1.1", prefixlen: 24 },
      ],
    },
    { ifname: "eth0", addr_info: [{ family: "inet6", local: "2001:db8:99::5", prefixlen: 64 }] },
  ];
  const route6 = [
    { dst: "2001:db8:42:6::/64", dev: "lo", protocol: "kernel", metric: 256 },
    { type: "unreachable", dst: "2001:db8:42::/48", dev: "lo", metric: 1024 },
    {
      dst: "2001:db8:42:9::/64",
      gateway: "fe80::2",
      dev: "re6stnet0",
      protocol: "babel",
      metric: 1024,
    },
    { dst: "default", from: "2001:db8:42::/48", gateway: "fe80::3", dev: "re6stnet1", table: "9" },
    { dst: "2001:db8:99::/64", dev: "eth0", protocol: "kernel", metric: 256 },
    { type: "local", dst: "2001:db8:42:6::1", dev: "lo", table: "local", protocol: "kernel" },
  ];
  const route4 = [{ type: "unreachable", dst: "10.42.0.0/16", protocol: "static" }];
  const links = [
    { ifname: "lo" },
    { ifname: "re6stnet0", linkinfo: { info_kind: "tun", info_data: { type: "tap" } } },
    { ifname: "re6stnet-udp", linkinfo: { info_kind: "tun", info_data: { type: "tap" } } },
    { ifname: "re6stnetx", linkinfo: { info_kind: "veth" } },
    { ifname: "tap0", linkinfo: { info_kind: "tun", info_data: { type: "tap" } } },
  ];
  const r = scripted({
    "ip -j addr show": { stdout: JSON.stringify(addr) },
    "ip -j -6 route show table all": { stdout: JSON.stringify(route6) },
    "ip -j -4 route show table all": { stdout: JSON.stringify(route4) },
    "ip -j -d link show": { stdout: JSON.stringify(links) },
  });
  const p = createLinuxPlatform(r);
  const l = await p.listLeftovers({ networks: ["2001:db8:42::/48", "10.42.0.0/16"] });
  assert.deepEqual(l, {
    addresses: [
      { address: "2001:db8:42:6::1/64", dev: "lo" },
      { address: "10.42.1.1/24", dev: "lo" },
    ],
    routes: [
      { dst: "2001:db8:42::/48", family: 6, type: "unreachable", metric: 1024 },
      {
        dst: "2001:db8:42:9::/64",
        family: 6,
        via: "fe80::2",
        dev: "re6stnet0",
        proto: "babel",
        metric: 1024,
      },
      {
        dst: "default",
        family: 6,
        from: "2001:db8:42::/48",
        via: "fe80::3",
        dev: "re6stnet1",
        table: "9",
      },
      { dst: "10.42.0.0/16", family: 4, type: "unreachable", proto: "static" },
    ],
    taps: ["re6stnet0", "re6stnet-udp"],
  });
  const before = r.calls.length;
  await p.removeLeftovers(l);
  assert.deepEqual(r.lines().slice(before), [
    "ip -6 route del unreachable 2001:db8:42::/48 metric 1024",
    "ip -6 route del 2001:db8:42:9::/64 via fe80::2 dev re6stnet0 proto babel metric 1024",
    "ip -6 route del default from 2001:db8:42::/48 via fe80::3 dev re6stnet1 table 9",
    "ip -4 route del unreachable 10.42.0.0/16 proto static",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip -4 addr del 10.42.1.1/24 dev lo",
    "ip link del dev re6stnet0",
    "ip link del dev re6stnet-udp",
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
