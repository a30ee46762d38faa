import assert from "node:assert/strict";
import { deriveModel, neighbourKey } from "../../core/babel/model.ts";
import { type BabelRoute, parseBabelLine } from "../../core/babel/parse.ts";
import { applyEvent, type BabelSnapshot, emptyView, snapshotOf } from "../../core/babel/view.ts";

const NETWORK = "001000000000000100001101101110000000000001000010"; // 2001:db8:42::/48
const P0 = "0000000000000000"; // 2001:db8:42::/64 (node A itself)
const P1 = "0000000000000001"; // 2001:db8:42:1::/64 (B)
const P2 = "0000000000000010"; // 2001:db8:42:2::/64 (C)
const B = { address: "fe80::bc68:7bff:fe1e:5737", iface: "r6vA" };

// PROTOCOL.md §8.4.2: dump on node A (B is a neighbour and a gateway, C is behind B).
const DUMP_A = [
  "add interface t1 up false",
  "add interface r6vA up true ipv6 fe80::5ca2:44ff:fe32:c21",
  "add neighbour 555e84ba2660 address fe80::bc68:7bff:fe1e:5737 if r6vA reach ffff ureach 0000 rxcost 4096 txcost 96 rtt 0.211 rttcost 0 cost 96",
  "add xroute 2001:db8:42::/64-::/0 prefix 2001:db8:42::/64 from ::/0 metric 0",
  "add route 555e84ba4450 prefix ::/0 from 2001:db8:42::/48 installed yes id 84:76:0f:c9:9e:20:96:de metric 96 refmetric 0 via fe80::bc68:7bff:fe1e:5737 if r6vA",
  "add route 555e84ba27f0 prefix 2001:db8:42:1::/64 from ::/0 installed yes id 84:76:0f:c9:9e:20:96:de metric 96 refmetric 0 via fe80::bc68:7bff:fe1e:5737 if r6vA",
  "add route 555e84ba28e0 prefix 2001:db8:42:2::/64 from ::/0 installed yes id 30:5f:0d:88:4d:1c:4f:ca metric 192 refmetric 96 via fe80::bc68:7bff:fe1e:5737 if r6vA",
];

function snapshot(lines: string[]): BabelSnapshot {
  const view = emptyView();
  for (const l of lines) {
    const p = parseBabelLine(l);
    assert.ok(p?.type === "event", l);
    applyEvent(view, p.event);
  }
  return snapshotOf(view);
}

function route(id: string, prefix: string, via: string, iface: string, extra = ""): string {
  return `add route ${id} prefix ${prefix} from ::/0 installed yes id 1:2:3:4:5:6:7:8 ` +
    `metric 96 refmetric ${extra || "0"} via ${via} if ${iface}`;
}

Deno.test("the transcript dump identifies B, sees C as distant and the gateway route as NONE", () => {
  const m = deriveModel(snapshot(DUMP_A), NETWORK, P1);
  assert.deepEqual([...m.neighbours.keys()], [P1]);
  const b = m.neighbours.get(P1)!;
  assert.deepEqual(b.neighbour, B);
  assert.deepEqual([...b.routes.keys()].sort(), [null, P1, P2].sort());
  assert.equal(b.routes.get(null)?.from, "2001:db8:42::");
  assert.deepEqual([...m.knownNodes].sort(), [P1, P2]);
  assert.deepEqual([...m.distantNodes], [P2]);
  assert.equal(m.unidentified, null);
  assert.equal(m.registryReachable, true);
  assert.deepEqual([...m.routesVia.keys()], [neighbourKey(B)]);
  assert.equal(m.buggy.size, 0);
});

Deno.test("the registry is unreachable when its prefix is not a known node", () => {
  assert.equal(deriveModel(snapshot(DUMP_A), NETWORK, P0).registryReachable, false);
  assert.equal(deriveModel(snapshot(DUMP_A), NETWORK).registryReachable, false);
  assert.equal(deriveModel(snapshot(DUMP_A), NETWORK, P2).registryReachable, true);
});

Deno.test("routes that are not installed, retracted (metric 65535) or IPv4 are ignored", () => {
  const m = deriveModel(
    snapshot([
      "add route 1 prefix 2001:db8:42:1::/64 from ::/0 installed no id 1:2:3:4:5:6:7:8 metric 96 refmetric 0 via fe80::1 if t1",
      "add route 2 prefix 2001:db8:42:2::/64 from ::/0 installed yes id 1:2:3:4:5:6:7:8 metric 65535 refmetric 65535 via fe80::1 if t1",
      "add route 3 prefix 10.42.1.0/24 from 0.0.0.0/0 installed yes id 1:2:3:4:5:6:7:8 metric 96 refmetric 0 via fe80::1 if t1",
    ]),
    NETWORK,
  );
  assert.equal(m.routesVia.size, 0);
  assert.equal(m.knownNodes.size, 0);
});

Deno.test("a neighbour originating no network prefix is unidentified and its routes pooled", () => {
  const m = deriveModel(
    snapshot([
      route("1", "2001:db8:42:1::/64", "fe80::1", "t1"),
      route("2", "2001:db8:42:2::/64", "fe80::2", "t2", "96"),
      route("3", "2001:db8:99::/48", "fe80::2", "t2"), // foreign prefix: NONE
      route("4", "2001:db8:42:3::/64", "fe80::3", "t3", "192"),
    ]),
    NETWORK,
  );
  assert.deepEqual([...m.neighbours.keys()], [P1]);
  assert.deepEqual(m.unidentified?.neighbours, [
    { address: "fe80::2", iface: "t2" },
    { address: "fe80::3", iface: "t3" },
  ]);
  assert.deepEqual([...m.unidentified!.routes.keys()], [P2, null, "0000000000000011"]);
  assert.deepEqual([...m.distantNodes].sort(), [P2, "0000000000000011"]);
});

Deno.test("the same neighbour on two interfaces counts as two neighbours", () => {
  const m = deriveModel(
    snapshot([
      route("1", "2001:db8:42:1::/64", "fe80::1", "t1"),
      route("2", "2001:db8:42:2::/64", "fe80::1", "t2"),
    ]),
    NETWORK,
  );
  assert.equal(m.routesVia.size, 2);
  assert.deepEqual(m.neighbours.get(P1)?.neighbour, { address: "fe80::1", iface: "t1" });
  assert.deepEqual(m.neighbours.get(P2)?.neighbour, { address: "fe80::1", iface: "t2" });
});

Deno.test("a neighbour originating several prefixes is buggy and identified under each", () => {
  const m = deriveModel(
    snapshot([
      route("1", "2001:db8:42:1::/64", "fe80::1", "t1"),
      route("2", "2001:db8:42:2::/64", "fe80::1", "t1"),
    ]),
    NETWORK,
  );
  assert.deepEqual(m.buggy.get("fe80::1%t1"), [P1, P2]);
  assert.equal(m.neighbours.get(P1), m.neighbours.get(P2));
  assert.equal(m.distantNodes.size, 0);
});

Deno.test("a prefix no longer than the network, or outside it, is not a node", () => {
  const m = deriveModel(
    snapshot([
      route("1", "2001:db8:42::/48", "fe80::1", "t1"),
      route("2", "2001:db8:43:1::/64", "fe80::1", "t1"),
    ]),
    NETWORK,
  );
  assert.equal(m.knownNodes.size, 0);
  assert.deepEqual([...m.unidentified!.routes.keys()], [null]);
});

Deno.test("a non-installed alternative does not hide the installed route", () => {
  const snap = snapshot(DUMP_A);
  const alt: BabelRoute = {
    ...snap.routes[1],
    id: "alt",
    installed: false,
    via: "fe80::9",
    iface: "t9",
  };
  snap.routes.push(alt);
  const m = deriveModel(snap, NETWORK);
  assert.deepEqual([...m.routesVia.keys()], [neighbourKey(B)]);
});
