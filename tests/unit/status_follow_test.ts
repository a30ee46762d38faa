import assert from "node:assert/strict";
import { changes, type FollowState } from "../../core/status/follow.ts";

function state(over: Partial<FollowState> = {}): FollowState {
  return {
    cn: "6/16",
    state: "running",
    version: 3,
    tunnels: new Map([["re6stnet1", {
      peer: "1/16",
      direction: "client",
      protocol: "udp",
      established: true,
      retiring: false,
    }]]),
    peers: new Set(["1/16"]),
    routes: new Map([["1/16", {
      prefix: "2001:db8:42:1::/64",
      via: "fe80::1",
      interface: "re6stnet1",
      peer: "1/16",
    }]]),
    ...over,
  };
}

Deno.test("no change, no line", () => {
  assert.deepEqual(changes(state(), state()), []);
});

Deno.test("a retiring tunnel, a new version, a moved route and a new peer are each one line", () => {
  const before = state();
  const after = state({
    version: 4,
    tunnels: new Map([
      ["re6stnet1", { ...before.tunnels.get("re6stnet1")!, retiring: true }],
      ["re6stnet-udp", {
        peer: "2/16",
        direction: "server",
        protocol: "udp",
        established: false,
        retiring: false,
      }],
    ]),
    peers: new Set(["1/16", "2/16"]),
    routes: new Map([["1/16", {
      prefix: "2001:db8:42:1::/64",
      via: "fe80::2",
      interface: "re6stnet-udp",
      peer: "2/16",
    }]]),
  });
  assert.deepEqual(changes(before, after).map((e) => e.event), [
    "config-version",
    "tunnel-retiring",
    "tunnel-opened",
    "peer-added",
    "route-changed",
  ]);
  const moved = changes(before, after).at(-1)!;
  assert.deepEqual(moved.was, { via: "fe80::1", peer: "1/16" });
  assert.equal(moved.node, "1/16");
});

Deno.test("a closed tunnel, a lost peer and route, and a state change are each one line", () => {
  const after = state({
    state: "stopping",
    tunnels: new Map(),
    peers: new Set(),
    routes: new Map(),
  });
  assert.deepEqual(changes(state(), after), [
    { event: "node-state", state: "stopping" },
    { event: "tunnel-closed", interface: "re6stnet1", peer: "1/16", direction: "client" },
    { event: "peer-lost", peer: "1/16" },
    { event: "route-lost", node: "1/16", prefix: "2001:db8:42:1::/64" },
  ]);
});
