import assert from "node:assert/strict";
import type { Address } from "../../core/addressing.ts";
import { memoryLogger } from "../../core/log.ts";
import { manualClock } from "../../core/clock.ts";
import { createUpnpForwarding, type UpnpOptions } from "../../core/upnp/forwarding.ts";
import { UpnpError } from "../../core/upnp/port_mapper.ts";
import { formatRecord, parseRecord } from "../../core/upnp/record.ts";
import { fakeGateway, fault, memoryStore } from "../helpers/upnp_fake.ts";

const SERVERS = [
  { port: 1194, proto: "udp" },
  { port: 1194, proto: "tcp" },
  { port: 1195, proto: "tcp6" },
];
const S = 1000;

function setup(over: Partial<UpnpOptions> = {}) {
  const gw = fakeGateway();
  const store = memoryStore();
  const clock = manualClock();
  const log = memoryLogger();
  const changes: Address[][] = [];
  const fwd = createUpnpForwarding({
    mapper: gw,
    store,
    clock,
    log,
    description: "re6st 6/16",
    random: () => 0.5,
    onChange: (a) => changes.push(a),
    ...over,
  });
  return { gw, store, clock, log, changes, fwd };
}

const entry = (ip: string, port: number, proto: Address["proto"]) => ({ ip, port, proto });

Deno.test("maps each IPv4 server on its own port and advertises the gateway's external address", async () => {
  const { gw, store, fwd, log } = setup();
  const r = await fwd.start(SERVERS);
  assert.deepEqual(r, {
    kind: "mapped",
    gateway: gw.gateway.controlUrl,
    externalIp: "11.42.0.254",
    addresses: [entry("11.42.0.254", 1194, "udp"), entry("11.42.0.254", 1194, "tcp")],
  });
  assert.deepEqual(fwd.addresses(), r.kind === "mapped" ? r.addresses : null);
  assert.deepEqual(
    gw.table.map((m) => [m.protocol, m.externalPort, m.internalClient, m.internalPort, m.leaseS]),
    [["UDP", 1194, "10.77.0.2", 1194, 3600], ["TCP", 1194, "10.77.0.2", 1194, 3600]],
  );
  assert.ok(gw.table.every((m) => m.description === "re6st 6/16"));
  assert.deepEqual(parseRecord(store.text!), {
    gateway: gw.gateway.controlUrl,
    internalClient: "10.77.0.2",
    description: "re6st 6/16",
    mappings: [
      { protocol: "UDP", externalPort: 1194, internalPort: 1194 },
      { protocol: "TCP", externalPort: 1194, internalPort: 1194 },
    ],
  });
  const info = log.lines.filter((l) => l.includes("INFO"));
  assert.equal(info.length, 1, log.lines.join("\n"));
  assert.match(
    info[0],
    /UPnP gateway http:\/\/10\.77\.0\.1:5000\/ctl\/IPConn maps 11\.42\.0\.254:1194\/udp → 10\.77\.0\.2:1194, 11\.42\.0\.254:1194\/tcp → 10\.77\.0\.2:1194 \(lease 3600 s, renewed every 1800 s\)/,
  );
  await fwd.stop();
});

Deno.test("records a mapping before asking for it, so that a kill at any moment leaves a trace", async () => {
  const { gw, store, fwd } = setup();
  const seen: (string | null)[] = [];
  const add = gw.addMapping.bind(gw);
  gw.addMapping = (g, req) => {
    seen.push(store.text);
    return add(g, req);
  };
  await fwd.start(SERVERS.slice(0, 1));
  assert.deepEqual(parseRecord(seen[0]!).mappings, [
    { protocol: "UDP", externalPort: 1194, internalPort: 1194 },
  ]);
  await fwd.stop();
});

Deno.test("takes another external port when another client holds the server's port", async () => {
  const { gw, fwd, log } = setup();
  gw.foreign({ protocol: "TCP", externalPort: 1194 });
  const r = await fwd.start(SERVERS);
  // random() = 0.5 gives the middle of 32768–40959.
  assert.deepEqual(r.kind === "mapped" && r.addresses, [
    entry("11.42.0.254", 1194, "udp"),
    entry("11.42.0.254", 36864, "tcp"),
  ]);
  assert.ok(gw.calls.includes("AddPortMapping TCP 1194 lease 3600"));
  assert.equal(
    gw.table.find((m) => m.externalPort === 1194 && m.protocol === "TCP")?.description,
    "someone else",
  );
  assert.match(log.lines.join("\n"), /11\.42\.0\.254:36864\/tcp → 10\.77\.0\.2:1194/);
  await fwd.stop();
  assert.deepEqual(gw.table.map((m) => m.description), ["someone else"], "theirs stays");
});

Deno.test("gives up on a server whose ports are all taken and still maps the others", async () => {
  let n = 0;
  const { gw, fwd, log } = setup({ random: () => (n++ % 8) / 8 });
  for (let i = 0; i < 8; i++) gw.foreign({ protocol: "TCP", externalPort: 32768 + 1024 * i });
  gw.foreign({ protocol: "TCP", externalPort: 1194 });
  const r = await fwd.start(SERVERS);
  assert.deepEqual(r.kind === "mapped" && r.addresses, [entry("11.42.0.254", 1194, "udp")]);
  const warn = log.lines.filter((l) => l.includes("WARNING"));
  assert.equal(warn.length, 1);
  assert.match(warn[0], /1194\/tcp: external ports 1194(, 3\d{4}){7} are all taken on the gateway/);
  assert.match(
    warn[0],
    /mapped only 11\.42\.0\.254:1194\/udp → 10\.77\.0\.2:1194; trying again in 60 s/,
  );
  assert.equal(fwd.status().lastError?.startsWith("1194/tcp: external ports"), true);
  await fwd.stop();
});

Deno.test("no gateway: one log line, client-only, then maps once a gateway answers", async () => {
  const { gw, clock, fwd, log, changes } = setup();
  gw.present = false;
  const r = await fwd.start(SERVERS);
  assert.deepEqual(r, { kind: "client-only", reason: "no UPnP gateway answered within 2000 ms" });
  assert.deepEqual(log.lines.map((l) => l.replace(/^\S+ \S+ /, "")), [
    "WARNING No UPnP gateway answered within 2000 ms: no port mapped (client-only over IPv4: " +
    "peers cannot open tunnels to us through the NAT); trying again in 60 s (enable UPnP on the " +
    "router, or forward the ports and give --ip)",
  ]);
  assert.equal(fwd.status().state, "client-only");
  await clock.advance(60 * S);
  await clock.advance(120 * S);
  assert.equal(gw.calls.filter((c) => c === "discover").length, 3, "searches at 60 s, then 120 s");
  assert.equal(log.lines.filter((l) => l.includes("WARNING")).length, 1, "one line, not one a try");
  gw.present = true;
  await clock.advance(240 * S);
  assert.deepEqual(changes, [[
    entry("11.42.0.254", 1194, "udp"),
    entry("11.42.0.254", 1194, "tcp"),
  ]]);
  assert.equal(fwd.status().state, "mapped");
  await fwd.stop();
});

Deno.test("renews every half lease, and advertises a new external address at once", async () => {
  const { gw, clock, fwd, changes } = setup();
  await fwd.start(SERVERS.slice(0, 1));
  gw.calls.length = 0;
  await clock.advance(1799 * S);
  assert.deepEqual(gw.calls, []);
  await clock.advance(1 * S);
  assert.deepEqual(gw.calls, ["GetExternalIPAddress", "AddPortMapping UDP 1194 lease 3600"]);
  assert.deepEqual(changes, [], "same address, nothing to announce");
  assert.equal(fwd.status().mappings[0].leaseEnd, new Date(clock.now() + 3600 * S).toISOString());
  gw.externalIp = "11.42.0.7";
  fwd.refresh();
  await clock.advance(0);
  assert.deepEqual(changes, [[entry("11.42.0.7", 1194, "udp")]]);
  await fwd.stop();
});

Deno.test("a gateway that stops answering: retries, withdraws the entries when the lease ends, maps again when back", async () => {
  const { gw, clock, fwd, log, changes } = setup();
  await fwd.start(SERVERS.slice(0, 1));
  gw.present = false;
  await clock.advance(1800 * S);
  const warn = log.lines.filter((l) => l.includes("WARNING"));
  assert.equal(warn.length, 1);
  assert.match(
    warn[0],
    /UPnP port mapping failed: UPnP GetExternalIPAddress on gateway http:\/\/10\.77\.0\.1:5000\/ctl\/IPConn failed: no answer .*: mapped only 11\.42\.0\.254:1194\/udp → 10\.77\.0\.2:1194; trying again in 60 s/,
  );
  assert.deepEqual(fwd.addresses(), [entry("11.42.0.254", 1194, "udp")], "lease still runs");
  await clock.advance(1800 * S);
  assert.deepEqual(changes, [[]], "withdrawn at the end of the lease");
  assert.equal(fwd.status().state, "client-only");
  assert.equal(log.lines.filter((l) => l.includes("WARNING")).length, 1);
  gw.present = true;
  gw.table.length = 0; // the gateway restarted
  await clock.advance(3600 * S);
  assert.deepEqual(changes.at(-1), [entry("11.42.0.254", 1194, "udp")]);
  assert.equal(gw.table.length, 1);
  assert.match(log.lines.at(-1)!, /INFO UPnP gateway .* maps 11\.42\.0\.254:1194\/udp/);
  await fwd.stop();
});

Deno.test("a renewal refused because another client took the port moves to another port", async () => {
  const { gw, clock, fwd, changes } = setup();
  await fwd.start(SERVERS.slice(0, 1));
  gw.table.length = 0;
  gw.foreign({ protocol: "UDP", externalPort: 1194 });
  await clock.advance(1800 * S);
  assert.deepEqual(changes, [[entry("11.42.0.254", 36864, "udp")]]);
  await fwd.stop();
  assert.deepEqual(gw.table.map((m) => m.description), ["someone else"]);
});

Deno.test("stop removes our mappings and the record", async () => {
  const { gw, store, fwd, log } = setup();
  gw.foreign({ protocol: "TCP", externalPort: 80 });
  await fwd.start(SERVERS);
  await fwd.stop();
  assert.deepEqual(gw.table.map((m) => m.externalPort), [80]);
  assert.equal(store.text, null);
  assert.equal(fwd.status().state, "stopped");
  assert.match(
    log.lines.at(-1)!,
    /INFO Removed UPnP mappings 11\.42\.0\.254:1194\/udp → 10\.77\.0\.2:1194, 11\.42\.0\.254:1194\/tcp/,
  );
  await fwd.stop(); // twice is harmless
});

Deno.test("a mapping stop cannot remove stays in the record for the next start", async () => {
  const { gw, store, fwd, log } = setup();
  await fwd.start(SERVERS);
  gw.failNext("DeletePortMapping", fault(gw.gateway, "DeletePortMapping", 606));
  await fwd.stop();
  assert.deepEqual(parseRecord(store.text!).mappings, [
    { protocol: "UDP", externalPort: 1194, internalPort: 1194 },
  ]);
  assert.match(
    log.lines.join("\n"),
    /WARNING Cannot remove UPnP mapping 11\.42\.0\.254:1194\/udp → 10\.77\.0\.2:1194: UPnP DeletePortMapping on gateway http:\/\/10\.77\.0\.1:5000\/ctl\/IPConn failed: error 606 Action not authorized; it expires with its lease, and the next start tries again/,
  );
});

Deno.test("the next start removes the mappings a killed run recorded, and only those", async () => {
  const { gw, store, fwd, log } = setup();
  store.text = formatRecord({
    gateway: "http://10.77.0.1:41234/ctl/IPConn", // the gateway restarted since: another port
    internalClient: "10.77.0.2",
    description: "re6st 6/16",
    mappings: [
      { protocol: "TCP", externalPort: 2000, internalPort: 1194 },
      { protocol: "UDP", externalPort: 2001, internalPort: 1194 },
      { protocol: "TCP", externalPort: 2002, internalPort: 1194 },
    ],
  });
  gw.foreign({
    protocol: "TCP",
    externalPort: 2000,
    internalClient: "10.77.0.2",
    description: "re6st 6/16",
  });
  gw.foreign({
    protocol: "UDP",
    externalPort: 2001,
    internalClient: "10.77.0.2",
    description: "torrent",
  });
  gw.foreign({
    protocol: "TCP",
    externalPort: 2002,
    internalClient: "10.77.0.3",
    description: "re6st 6/16",
  });
  await fwd.start(SERVERS.slice(0, 1));
  assert.deepEqual(gw.table.map((m) => `${m.protocol} ${m.externalPort}`), [
    "UDP 2001",
    "TCP 2002",
    "UDP 1194",
  ]);
  assert.match(
    log.lines.join("\n"),
    /INFO Removed UPnP mapping 2000\/tcp → 10\.77\.0\.2:1194 left by a previous run/,
  );
  assert.deepEqual(parseRecord(store.text!).mappings, [
    { protocol: "UDP", externalPort: 1194, internalPort: 1194 },
  ]);
  await fwd.stop();
});

Deno.test("a record from another gateway or an unreadable one is left alone", async () => {
  for (
    const text of [
      "{oops",
      formatRecord({
        gateway: "http://192.168.1.1:5000/ctl/IPConn",
        internalClient: "10.77.0.2",
        description: "re6st 6/16",
        mappings: [{ protocol: "TCP", externalPort: 2000, internalPort: 1194 }],
      }),
    ]
  ) {
    const { gw, store, fwd, log } = setup();
    store.text = text;
    gw.foreign({
      protocol: "TCP",
      externalPort: 2000,
      internalClient: "10.77.0.2",
      description: "re6st 6/16",
    });
    await fwd.start(SERVERS.slice(0, 1));
    assert.ok(gw.table.some((m) => m.externalPort === 2000));
    assert.match(
      log.lines.join("\n"),
      /Ignoring the UPnP mapping record|Not removing the UPnP mappings recorded on gateway http:\/\/192\.168\.1\.1/,
    );
    await fwd.stop();
  }
});

Deno.test("a gateway that accepts only permanent leases gets permanent mappings, shown without lease end", async () => {
  const { gw, fwd } = setup();
  gw.onlyPermanent = true;
  await fwd.start(SERVERS.slice(0, 1));
  assert.equal(gw.table[0].leaseS, 0);
  assert.deepEqual(fwd.status().mappings, [{
    protocol: "udp",
    externalIp: "11.42.0.254",
    externalPort: 1194,
    internalClient: "10.77.0.2",
    internalPort: 1194,
    leaseEnd: null,
  }]);
  await fwd.stop();
  assert.deepEqual(gw.table, []);
});

Deno.test("a gateway whose external address is private maps nothing and says why", async () => {
  const { gw, fwd, log } = setup();
  gw.externalIp = "100.64.3.4";
  const r = await fwd.start(SERVERS);
  assert.equal(r.kind, "client-only");
  assert.match(
    r.kind === "client-only" ? r.reason : "",
    /external address of UPnP gateway .* is 100\.64\.3\.4, not a public address/,
  );
  assert.deepEqual(gw.table, []);
  assert.equal(log.lines.filter((l) => l.includes("WARNING")).length, 1);
  await fwd.stop();
});

Deno.test("a failing call names the gateway and the action in the log", async () => {
  const { gw, fwd, log } = setup();
  gw.failNext(
    "GetExternalIPAddress",
    new UpnpError(gw.gateway.controlUrl, "GetExternalIPAddress", "HTTP 500"),
  );
  await fwd.start(SERVERS);
  assert.match(
    log.lines[0],
    /WARNING UPnP port mapping failed: UPnP GetExternalIPAddress on gateway http:\/\/10\.77\.0\.1:5000\/ctl\/IPConn failed: HTTP 500: no port mapped/,
  );
  await fwd.stop();
});

Deno.test("status: mappings with external ip:port, internal port and lease end", async () => {
  const { fwd, clock } = setup();
  assert.equal(fwd.status().state, "searching");
  await fwd.start(SERVERS);
  assert.deepEqual(fwd.status(), {
    state: "mapped",
    gateway: "http://10.77.0.1:5000/ctl/IPConn",
    externalIp: "11.42.0.254",
    mappings: ["udp", "tcp"].map((protocol) => ({
      protocol,
      externalIp: "11.42.0.254",
      externalPort: 1194,
      internalClient: "10.77.0.2",
      internalPort: 1194,
      leaseEnd: new Date(clock.now() + 3600 * S).toISOString(),
    })),
    lastError: null,
  });
  await fwd.stop();
});

Deno.test("without an IPv4 server nothing is mapped, but a killed run's mappings are removed", async () => {
  const quiet = setup();
  const r = await quiet.fwd.start([{ port: 1194, proto: "udp6" }]);
  assert.deepEqual(r, { kind: "client-only", reason: "no IPv4 OpenVPN server to map" });
  assert.deepEqual(quiet.gw.calls, [], "no record: not even a search");
  await quiet.fwd.stop();

  const { gw, store, fwd } = setup();
  store.text = formatRecord({
    gateway: gw.gateway.controlUrl,
    internalClient: "10.77.0.2",
    description: "re6st 6/16",
    mappings: [{ protocol: "UDP", externalPort: 1194, internalPort: 1194 }],
  });
  gw.foreign({
    protocol: "UDP",
    externalPort: 1194,
    internalClient: "10.77.0.2",
    description: "re6st 6/16",
  });
  await fwd.start([{ port: 1194, proto: "tcp6" }]);
  assert.deepEqual(gw.table, []);
  assert.equal(store.text, null);
  await fwd.stop();
});

Deno.test("a stop during start waits for the call in flight, then removes what it made", async () => {
  const { gw, store, fwd } = setup();
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  const add = gw.addMapping.bind(gw);
  gw.addMapping = async (g, req) => {
    await held;
    return add(g, req);
  };
  const starting = fwd.start(SERVERS);
  await new Promise((r) => setTimeout(r, 0));
  const stopping = fwd.stop();
  release();
  assert.deepEqual(await starting, {
    kind: "client-only",
    reason: "stopped while starting",
  });
  await stopping;
  assert.deepEqual(gw.table, []);
  assert.equal(store.text, null);
  assert.equal(
    gw.calls.filter((c) => c.startsWith("AddPortMapping")).length,
    1,
    "no second server",
  );
});
