// platform/journal.ts with a store: the journal a killed node leaves for the next start.
import assert from "node:assert/strict";
import { parseJournal } from "../../core/node/kernel.ts";
import { createRecorderPlatform } from "../../platform/recorder.ts";
import type { Change } from "../../platform/types.ts";

const NODE_IP = { address: "2001:db8:42:6::1/64", dev: "lo" };
const ROUTE = { type: "unreachable" as const, dst: "2001:db8:42::/48" };

/** A store keeping every version saved. */
function memoryStore() {
  const saves: Change[][] = [];
  return {
    saves,
    last: () => saves.at(-1) ?? [],
    save(changes: readonly Change[]) {
      saves.push(structuredClone([...changes]));
      return Promise.resolve();
    },
  };
}

Deno.test("a change is in the stored journal before the kernel is asked to make it", async () => {
  const store = memoryStore();
  const atOp: number[] = [];
  const p = createRecorderPlatform({
    fail(line) {
      if (line.includes(" add ")) atOp.push(store.last().length);
      return undefined;
    },
  });
  await p.persistJournal(store);
  await p.createTap("re6stnet-tcp");
  await p.addAddress(NODE_IP);
  assert.deepEqual(atOp, [1, 2], "each add found itself already stored");
  assert.deepEqual(store.last(), [
    { kind: "tap", name: "re6stnet-tcp" },
    { kind: "address", spec: NODE_IP },
  ]);
  await p.removeAddress(NODE_IP);
  assert.deepEqual(store.last(), [{ kind: "tap", name: "re6stnet-tcp" }]);
  await p.undoAll();
  assert.deepEqual(store.last(), []);
});

Deno.test("an object that was already there leaves the stored journal again", async () => {
  const store = memoryStore();
  const p = createRecorderPlatform();
  p.model.addresses.push({ ...NODE_IP }); // the operator's
  await p.persistJournal(store);
  assert.equal(await p.addAddress(NODE_IP), false);
  assert.deepEqual(store.last(), [], "not ours: a later run must not remove it");
  assert.deepEqual(p.changes(), []);
});

Deno.test("a failed change leaves the stored journal again", async () => {
  const store = memoryStore();
  const p = createRecorderPlatform({
    fail: (line) =>
      line.startsWith("ip -6 route add") ? "RTNETLINK answers: Invalid argument" : undefined,
  });
  await p.persistJournal(store);
  await assert.rejects(p.addRoute(ROUTE), /Invalid argument/);
  assert.deepEqual(store.last(), []);
});

Deno.test("a previous run's changes are undone newest first; failures are retried at undoAll", async () => {
  let busy = true;
  const p = createRecorderPlatform({
    fail: (line) =>
      busy && line === "ip link del dev re6stnet1" ? "Device or resource busy" : undefined,
  });
  p.model.links.set("re6stnet1", { kind: "tap", up: true, mtu: 1500 });
  p.model.addresses.push({ ...NODE_IP });
  const store = memoryStore();
  await p.persistJournal(store);
  const kept = await p.undoPrevious([
    { kind: "tap", name: "re6stnet1" },
    { kind: "address", spec: NODE_IP },
    { kind: "route", spec: ROUTE }, // already gone: fine
  ]);
  assert.equal(kept, 1);
  assert.deepEqual(p.ops, [
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet1",
  ]);
  assert.deepEqual(store.last(), [{ kind: "tap", name: "re6stnet1" }]);
  busy = false;
  await p.undoAll();
  assert.deepEqual(p.state(), ["link lo other up mtu 65536"]);
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
      { kind: "reboot" },
      null,
    ])),
    [{ kind: "tap", name: "re6stnet1" }, {
      kind: "route",
      spec: { dst: "10.0.0.5/32", via: "10.9.9.9" },
    }],
  );
});
