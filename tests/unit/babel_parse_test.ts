import assert from "node:assert/strict";
import { type BabelEvent, parseBabelLine } from "../../core/babel/parse.ts";
import { applyEvent, emptyView, pruneView, snapshotOf } from "../../core/babel/view.ts";

// PROTOCOL.md §8.4.2: banner and `dump` of node A.
const TRANSCRIPT_BANNER = [
  "BABEL 1.0",
  "version babeld-1.12.1",
  "host vm",
  "my-id a4:56:ea:4d:94:9a:d2:ef",
  "ok",
];
const TRANSCRIPT_DUMP = [
  "add interface t1 up false",
  "add interface r6vA up true ipv6 fe80::5ca2:44ff:fe32:c21",
  "add neighbour 555e84ba2660 address fe80::bc68:7bff:fe1e:5737 if r6vA reach ffff ureach 0000 rxcost 4096 txcost 96 rtt 0.211 rttcost 0 cost 96",
  "add xroute 2001:db8:42::/64-::/0 prefix 2001:db8:42::/64 from ::/0 metric 0",
  "add route 555e84ba4450 prefix ::/0 from 2001:db8:42::/48 installed yes id 84:76:0f:c9:9e:20:96:de metric 96 refmetric 0 via fe80::bc68:7bff:fe1e:5737 if r6vA",
  "add route 555e84ba27f0 prefix 2001:db8:42:1::/64 from ::/0 installed yes id 84:76:0f:c9:9e:20:96:de metric 96 refmetric 0 via fe80::bc68:7bff:fe1e:5737 if r6vA",
  "add route 555e84ba28e0 prefix 2001:db8:42:2::/64 from ::/0 installed yes id 30:5f:0d:88:4d:1c:4f:ca metric 192 refmetric 96 via fe80::bc68:7bff:fe1e:5737 if r6vA",
  "ok",
];

function event(line: string): BabelEvent {
  const p = parseBabelLine(line);
  assert.ok(p && p.type === "event", `not an object line: ${line}`);
  return p.event;
}

Deno.test("the banner lines and replies are recognised", () => {
  assert.deepEqual(TRANSCRIPT_BANNER.map(parseBabelLine), [
    { type: "banner", key: "BABEL", value: "1.0" },
    { type: "banner", key: "version", value: "babeld-1.12.1" },
    { type: "banner", key: "host", value: "vm" },
    { type: "banner", key: "my-id", value: "a4:56:ea:4d:94:9a:d2:ef" },
    { type: "reply", reply: { status: "ok" } },
  ]);
  assert.deepEqual(parseBabelLine("no No such interface"), {
    type: "reply",
    reply: { status: "no", message: "No such interface" },
  });
  assert.deepEqual(parseBabelLine("no"), { type: "reply", reply: { status: "no" } });
  assert.deepEqual(parseBabelLine("bad"), { type: "reply", reply: { status: "bad" } });
});

Deno.test("every line of the transcript dump parses into its fields", () => {
  const events = TRANSCRIPT_DUMP.slice(0, -1).map(event);
  assert.deepEqual(events[0], { kind: "add", type: "interface", value: { name: "t1", up: false } });
  assert.deepEqual(events[1].value, {
    name: "r6vA",
    up: true,
    ipv6: "fe80::5ca2:44ff:fe32:c21",
  });
  assert.deepEqual(events[2], {
    kind: "add",
    type: "neighbour",
    value: {
      id: "555e84ba2660",
      address: "fe80::bc68:7bff:fe1e:5737",
      iface: "r6vA",
      reach: 0xffff,
      ureach: 0,
      rxcost: 4096,
      txcost: 96,
      rtt: 0.211,
      rttcost: 0,
      cost: 96,
    },
  });
  assert.deepEqual(events[3].value, {
    prefix: "2001:db8:42::",
    plen: 64,
    from: "::",
    fromPlen: 0,
    metric: 0,
  });
  assert.deepEqual(events[4], {
    kind: "add",
    type: "route",
    value: {
      id: "555e84ba4450",
      prefix: "::",
      plen: 0,
      from: "2001:db8:42::",
      fromPlen: 48,
      installed: true,
      routerId: "84:76:0f:c9:9e:20:96:de",
      metric: 96,
      refmetric: 0,
      via: "fe80::bc68:7bff:fe1e:5737",
      iface: "r6vA",
    },
  });
  assert.equal(events[6].type === "route" && events[6].value.refmetric, 96);
});

Deno.test("neighbours without RTT, non-installed routes, IPv4 and flush lines parse", () => {
  const n = event(
    "add neighbour 555e84ba2660 address fe80::bc68:7bff:fe1e:5737 if r6vA reach 0000 ureach 0000 rxcost 65535 txcost 65535 cost 65535",
  );
  assert.ok(n.type === "neighbour" && n.value.rtt === undefined && n.value.cost === 65535);
  const r = event(
    "add route 5584f3084a40 prefix 2001:db8:42::/64 from ::/0 installed no id a4:56:ea:4d:94:9a:d2:ef metric 4288 refmetric 4192 via fe80::1098:5dff:fe12:69bd if r6vB2",
  );
  assert.ok(r.type === "route" && r.value.installed === false && r.value.metric === 4288);
  const v4 = event(
    "add route 5584f3084b00 prefix 10.42.1.0/24 from 0.0.0.0/0 installed yes id a4:56:ea:4d:94:9a:d2:ef metric 96 refmetric 0 via fe80::1098:5dff:fe12:69bd if r6vB2",
  );
  assert.ok(v4.type === "route" && v4.value.prefix === "10.42.1.0" && v4.value.plen === 24);
  const f = event("flush interface r6vA up false");
  assert.equal(f.kind, "flush");
  const i4 = event("change interface eth0 up true ipv6 fe80::1 ipv4 192.168.1.2");
  assert.deepEqual(i4.value, { name: "eth0", up: true, ipv6: "fe80::1", ipv4: "192.168.1.2" });
});

Deno.test("unknown extra fields of a newer babeld are ignored", () => {
  const r = event(
    "add route 1 prefix 2001:db8:42:1::/64 from ::/0 installed yes id 1:2:3:4:5:6:7:8 metric 96 refmetric 0 via fe80::1 if t1 newfield 42",
  );
  assert.equal(r.type === "route" && r.value.iface, "t1");
});

Deno.test("malformed lines are reported as null, never thrown", () => {
  const bad = [
    "",
    "   ",
    "garbage",
    "add",
    "add route",
    "add route 555e84ba4450",
    "add route zz prefix ::/0 from ::/0 installed yes id 1:2 metric 1 refmetric 0 via fe80::1 if a",
    "add route 1 prefix ::/0 from ::/0 installed maybe id 1:2 metric 1 refmetric 0 via fe80::1 if a",
    "add route 1 prefix ::/129 from ::/0 installed yes id 1:2 metric 1 refmetric 0 via fe80::1 if a",
    "add route 1 prefix 10.0.0.0/33 from ::/0 installed yes id 1:2 metric 1 refmetric 0 via fe80::1 if a",
    "add route 1 prefix ::/0 from ::/0 installed yes id 1:2 metric -1 refmetric 0 via fe80::1 if a",
    "add route 1 prefix ::/0 from ::/0 installed yes id 1:2 metric 1 refmetric 0 via nothere if a",
    "add route 1 prefix ::/0 from ::/0 installed yes id 1:2 metric 1 refmetric 0 via fe80::1",
    "add route 1 prefix ::/0 from ::/0 installed yes id 1:2 metric 1 refmetric 0 via fe80::1 if",
    "add neighbour 1 address fe80::1 if a reach xyz ureach 0 rxcost 1 txcost 1 cost 1",
    "add neighbour 1 address fe80::1 if a reach 0 ureach 0 rxcost 1 txcost 1 rtt abc rttcost 0 cost 1",
    "add interface a up maybe",
    "add interface this-name-is-too-long up true",
    "add interface a up true ipv4 300.1.1.1",
    "add xroute 2001:db8::/64-::/0 prefix 2001:db8:1::/64 from ::/0 metric 0",
    "add frobnicator 1 foo bar",
    "modify route 1 prefix ::/0",
    "BABEL",
    "\u0000\u0001binary",
  ];
  for (const line of bad) assert.equal(parseBabelLine(line), null, `accepted: ${line}`);
});

Deno.test("applying the dump builds a view; flush removes; pruning drops unlisted objects", () => {
  const view = emptyView();
  for (const l of TRANSCRIPT_DUMP.slice(0, -1)) applyEvent(view, event(l));
  let s = snapshotOf(view);
  assert.equal(s.interfaces.length, 2);
  assert.equal(s.neighbours.length, 1);
  assert.equal(s.xroutes.length, 1);
  assert.equal(s.routes.length, 3);
  applyEvent(
    view,
    event(
      "change route 555e84ba28e0 prefix 2001:db8:42:2::/64 from ::/0 installed yes id 30:5f:0d:88:4d:1c:4f:ca metric 65535 refmetric 65535 via fe80::bc68:7bff:fe1e:5737 if r6vA",
    ),
  );
  assert.equal(snapshotOf(view).routes.find((r) => r.id === "555e84ba28e0")?.metric, 65535);
  applyEvent(
    view,
    event(
      "flush route 555e84ba28e0 prefix 2001:db8:42:2::/64 from ::/0 installed no id 30:5f:0d:88:4d:1c:4f:ca metric 65535 refmetric 65535 via fe80::bc68:7bff:fe1e:5737 if r6vA",
    ),
  );
  s = snapshotOf(view);
  assert.equal(s.routes.length, 2);
  pruneView(view, new Set(["interface r6vA", "route 555e84ba4450"]));
  s = snapshotOf(view);
  assert.deepEqual(s.interfaces.map((i) => i.name), ["r6vA"]);
  assert.deepEqual(s.routes.map((r) => r.id), ["555e84ba4450"]);
  assert.equal(s.neighbours.length + s.xroutes.length, 0);
});

Deno.test("a snapshot is a copy that later changes do not touch", () => {
  const view = emptyView();
  applyEvent(view, event("add interface t1 up false"));
  const s = snapshotOf(view);
  applyEvent(view, event("change interface t1 up true ipv6 fe80::1"));
  assert.equal(s.interfaces[0].up, false);
});
