// platform/journal.ts with a store: the journal a killed node leaves for the next start.
import assert from "node:assert/strict";
import { EMPTY_KERNEL_STATE } from "../../core/kernel.ts";
import { parseJournal } from "../../platform/journal.ts";
import type { Change } from "../../platform/kernel_ops.ts";
import { createRecorderKernel } from "../../platform/recorder.ts";

const NODE_IP = { address: "2001:db8:42:6::1/64", dev: "lo" };
const ROUTE = { type: "unreachable" as const, dst: "2001:db8:42::/48" };
const SCOPE = { networks: ["2001:db8:42::/48"] };

/** A store keeping every version saved; `initial` is what a previous run left. */
function memoryStore(initial: Change[] = []) {
  const saves: Change[][] = [];
  return {
    saves,
    last: () => saves.at(-1) ?? initial,
    save(changes: readonly Change[]) {
      saves.push(structuredClone([...changes]));
      return Promise.resolve();
    },
    load: () => Promise.resolve(structuredClone(initial)),
  };
}

Deno.test("a change is in the stored journal before the kernel is asked to make it", async () => {
  const store = memoryStore();
  const atOp: number[] = [];
  const k = createRecorderKernel({
    store,
    fail(line) {
      if (line.includes(" add ")) atOp.push(store.last().length);
      return undefined;
    },
  });
  await k.apply({ ...EMPTY_KERNEL_STATE, taps: ["re6stnet-tcp"], addresses: [NODE_IP] });
  assert.deepEqual(atOp, [1, 2], "each add found itself already stored");
  assert.deepEqual(store.last(), [
    { kind: "tap", name: "re6stnet-tcp" },
    { kind: "address", spec: NODE_IP },
  ]);
  await k.apply({ ...EMPTY_KERNEL_STATE, taps: ["re6stnet-tcp"] });
  assert.deepEqual(store.last(), [{ kind: "tap", name: "re6stnet-tcp" }]);
  await k.apply(EMPTY_KERNEL_STATE);
  assert.deepEqual(store.last(), []);
});

Deno.test("an object that was already there leaves the stored journal again", async () => {
  const store = memoryStore();
  const k = createRecorderKernel({ store });
  k.model.addresses.push({ ...NODE_IP }); // the operator's
  await k.apply({ ...EMPTY_KERNEL_STATE, addresses: [NODE_IP] });
  assert.deepEqual(store.last(), [], "not ours: a later run must not remove it");
  assert.deepEqual(k.changes(), []);
});

Deno.test("a failed change leaves the stored journal again", async () => {
  const store = memoryStore();
  const k = createRecorderKernel({
    store,
    fail: (line) =>
      line.startsWith("ip -6 route add") ? "RTNETLINK answers: Invalid argument" : undefined,
  });
  await assert.rejects(k.apply({ ...EMPTY_KERNEL_STATE, routes: [ROUTE] }), /Invalid argument/);
  assert.deepEqual(store.last(), []);
});

Deno.test("a previous run's changes are undone newest first; failures are retried at the next apply", async () => {
  let busy = true;
  const store = memoryStore([
    { kind: "tap", name: "re6stnet1" },
    { kind: "address", spec: NODE_IP },
    { kind: "route", spec: ROUTE }, // already gone: fine
    { kind: "drain", tap: "re6stnet1" },
  ]);
  const k = createRecorderKernel({
    store,
    fail: (line) =>
      busy && line === "ip link del dev re6stnet1" ? "Device or resource busy" : undefined,
  });
  k.model.links.set("re6stnet1", { kind: "tap", up: true, mtu: 1500 });
  k.model.addresses.push({ ...NODE_IP });
  // babeld's routes, left by a killed babeld: one inside the network, one outside.
  k.model.routes.push({ dst: "2001:db8:42:9::/64", via: "fe80::9", dev: "lo", proto: "babel" });
  k.model.routes.push({ dst: "2001:db8:77::/64", via: "fe80::9", dev: "lo", proto: "babel" });
  const removed = await k.clearLeftovers(SCOPE);
  assert.deepEqual(removed, [
    "address 2001:db8:42:6::1/64 on lo",
    "route 2001:db8:42:9::/64 via fe80::9 dev lo proto babel",
  ]);
  assert.deepEqual(k.ops, [
    "nft delete element inet re6st_drain taps { re6stnet1 }",
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet1",
    "ip -6 route del 2001:db8:42:9::/64 via fe80::9 dev lo proto babel",
    "nft delete table inet re6st_drain",
  ]);
  assert.deepEqual(store.last(), [{ kind: "tap", name: "re6stnet1" }], "kept for a retry");
  busy = false;
  await k.apply(EMPTY_KERNEL_STATE);
  assert.deepEqual(k.state(), [
    "link lo other up mtu 65536",
    "route 2001:db8:77::/64 via fe80::9 dev lo proto babel",
  ]);
  assert.deepEqual(store.last(), []);
});

Deno.test("a stored journal that is torn or holds foreign entries yields only valid changes", () => {
  assert.deepEqual(parseJournal('[{"kind":"tap","name":"re6st'), []);
  assert.deepEqual(parseJournal('{"kind":"tap"}'), []);
  assert.deepEqual(
    parseJournal(JSON.stringify([
      { kind: "tap", name: "re6stnet1" },
      { kind: "tap" },
      { kind: "address", spec: { address: "2001:db8::1/64" } },
      { kind: "route", spec: { dst: "10.0.0.5/32", via: "10.9.9.9" } },
      { kind: "drain", tap: "re6stnet2" },
      { kind: "sysctl", key: "net.ipv6.conf.all.forwarding", previous: "0" },
      { kind: "reboot" },
      null,
    ])),
    [
      { kind: "tap", name: "re6stnet1" },
      { kind: "route", spec: { dst: "10.0.0.5/32", via: "10.9.9.9" } },
      { kind: "drain", tap: "re6stnet2" },
    ],
  );
});
