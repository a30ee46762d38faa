import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { BabelSnapshot } from "../../core/babel/view.ts";
import { openCache } from "../../core/node/cache.ts";
import { Node, type NodeExit } from "../../core/node/node.ts";
import type { ClientConnectEvent } from "../../core/openvpn/hooks.ts";
import { parseCertificate } from "../../core/cert.ts";
import { rsaEncrypt } from "../../core/crypto.ts";
import { encodeRelay } from "../../core/peer/frame.ts";
import { isControlStream } from "../../core/status/control.ts";
import { FOLLOW_INTERVAL_MS } from "../../core/status/follow.ts";
import { renderRoute, type RouteAnswer } from "../../core/status/route.ts";
import {
  STATUS_JSON_SCHEMA,
  type StatusDocument,
  validateSchema,
} from "../../core/status/document.ts";
import type { JournalStore } from "../../platform/kernel_ops.ts";
import { createRecorderKernel, type RecorderKernel } from "../../platform/recorder.ts";
import {
  enrolledWorld,
  fakeRegistry,
  type FakeWorld,
  fakeWorld,
  mapJournal,
  networkConfigBody,
  nodeCertPem,
  nodeKeyPem,
  nodeOptions,
  TEST_CA_CERT_PEM,
  TEST_DH_PEM as DH,
  TEST_JOURNAL as JOURNAL,
  TEST_NODE_ARGS as BASE,
} from "../helpers/node_fixtures.ts";
import { settled } from "../helpers/wait.ts";

async function world(
  o: {
    extra?: Record<string, unknown>;
    upExit?: number;
    netconfig?: () => Promise<Uint8Array>;
    kernel?: (store: JournalStore) => RecorderKernel;
    snapshot?: BabelSnapshot;
  } = {},
): Promise<FakeWorld> {
  const key = await nodeKeyPem();
  const cert = nodeCertPem(key);
  const body = networkConfigBody(cert, { extra: o.extra });
  return fakeWorld({
    files: { "/c/ca.crt": TEST_CA_CERT_PEM, "/c/cert.crt": cert, "/c/cert.key": key },
    registry: fakeRegistry({
      getNetworkConfig: o.netconfig ?? (() => Promise.resolve(body)),
      getDh: () => Promise.resolve(DH),
    }),
    upExit: o.upExit,
    kernel: o.kernel,
    snapshot: o.snapshot,
  });
}

/** A control request's signal that never aborts. */
const NEVER = new AbortController().signal;

/** Lets the node's promise chains run until `cond` holds (no time passes). */
const until = settled;

async function started(w: FakeWorld, args: string[] = []): Promise<[Node, Promise<NodeExit>]> {
  const node = new Node(nodeOptions([...BASE, ...args]), w.parts);
  const run = node.run();
  run.catch(() => {});
  await until(() => node.state !== "starting", "the node left start-up");
  return [node, run];
}

/** What a start and a stop do besides the node's own objects: clear babeld's leftovers. */
const CLEAR_DRAIN = "nft delete table inet re6st_drain";

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
/** A second Babel key. */
const KEY2 = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);

const START_OPS = [
  CLEAR_DRAIN,
  // Source routing probe (§7.1 step 4).
  "ip -6 route add unreachable ::/128 from ::/128",
  "ip -6 route del unreachable ::/128 from ::/128",
  // The TCP server's tap, then the node address and the network route (§7.1 steps 9-10).
  "ip tuntap add dev re6stnet-tcp mode tap",
  "ip -6 addr add 2001:db8:42:6::1/64 dev lo",
  "ip -6 route del fe80::/64 dev lo",
  "ip -6 route add unreachable 2001:db8:42::/48",
];

const STOP_OPS = [
  "ip -6 route del unreachable 2001:db8:42::/48",
  "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
  "ip link del dev re6stnet-tcp",
  CLEAR_DRAIN,
];

Deno.test("start-up makes exactly the reference kernel changes and teardown removes them", async () => {
  const w = await world();
  const [node, run] = await started(w);
  assert.equal(node.state, "running");
  assert.deepEqual(w.kernel.ops, START_OPS);
  assert.deepEqual(w.kernel.state(), [
    "address 2001:db8:42:6::1/64 dev lo",
    "link lo other up mtu 65536",
    "link re6stnet-tcp tap down mtu 1500",
    "route unreachable 2001:db8:42::/48",
  ]);
  node.stop("SIGTERM");
  assert.deepEqual(await run, { kind: "stopped", reason: "SIGTERM" });
  assert.deepEqual(w.kernel.ops, [...START_OPS, ...STOP_OPS]);
  assert.deepEqual(w.kernel.state(), ["link lo other up mtu 65536"]);
  assert.deepEqual(w.kernel.changes(), []);
});

Deno.test("babeld and the OpenVPN server run with the generated arguments and stop, babeld last", async () => {
  const w = await world();
  const [node, run] = await started(w);
  const [server, babeld] = w.processes;
  assert.equal(server.name, "openvpn re6stnet-tcp");
  const args = server.args.join(" ");
  assert.match(args, /--dev re6stnet-tcp .*--mode server .*--dh \/st\/dh.pem --max-clients 20 /);
  assert.match(args, /--port 1194 --proto tcp-server --ping-exit 60 /);
  assert.match(args, /--ca \/c\/ca.crt --cert \/c\/cert.crt --key \/c\/cert.key/);
  assert.match(args, /--cipher none --data-ciphers none/);
  assert.equal(babeld.name, "babeld");
  const conf = w.babelConfigs[0].configText;
  assert.match(conf, /^local-path-readwrite \/run\/babeld.sock$/m);
  assert.match(conf, /^redistribute ip 2001:db8:42:6::1\/64 eq 64$/m);
  assert.match(conf, /^key type blake2s128 id sign value 000102030405060708090a0b0c0d0e0f$/m);
  assert.match(
    conf,
    /^interface re6stnet-tcp type tunnel hello-interval 3.75$/m,
  );
  assert.deepEqual(w.babelConfigs[0].args.slice(0, 4), ["-h", "15", "-H", "15"]);
  assert.equal(w.files.get("/st/dh.pem"), DH, "DH parameters fetched into the state folder");
  const order: string[] = [];
  for (const p of w.processes) p.exited.then(() => order.push(p.name));
  node.stop();
  await run;
  assert.deepEqual(order, ["openvpn re6stnet-tcp", "babeld"]);
  assert.ok(w.processes.every((p) => p.stopped));
  assert.ok(w.babel.closed);
  assert.deepEqual(w.removed, ["/run"], "the run folder is removed");
});

Deno.test("a stop during start-up, while the registry is unreachable, leaves nothing behind", async () => {
  const w = await world({ netconfig: () => Promise.reject(new Error("connection refused")) });
  const node = new Node(nodeOptions(BASE), w.parts);
  const run = node.run();
  await until(() => w.registry.calls.length === 1, "a first getNetworkConfig");
  await w.clock.advance(1000);
  await until(() => w.registry.calls.length === 2, "a retry after 1 s");
  await w.clock.advance(1999);
  assert.equal(w.registry.calls.length, 2, "the second retry waits 2 s");
  node.stop("SIGINT");
  assert.deepEqual(await run, { kind: "stopped", reason: "SIGINT" });
  assert.deepEqual(w.processes, []);
  assert.deepEqual(w.kernel.ops, [CLEAR_DRAIN, CLEAR_DRAIN], "no kernel change of the node's");
  assert.ok(w.log.lines.some((l) => /will retry in 2 s/.test(l)));
  assert.deepEqual(w.removed, ["/run"]);
});

Deno.test("after a kill -9 the next start removes what the killed run journaled and babeld left", async () => {
  let kernel: RecorderKernel | null = null;
  const w = await world({
    kernel: (store) => kernel = createRecorderKernel({ links: ["lo", "eth0"], store }),
  });
  const m = kernel!.model;
  // Left by the killed run, and listed in its journal; babeld's route on the tap goes with it.
  m.links.set("re6stnet-tcp", { kind: "tap", up: true, mtu: 1500 });
  m.addresses.push({ address: "2001:db8:42:6::1/64", dev: "lo" });
  m.routes.push({ type: "unreachable", dst: "2001:db8:42::/48" });
  m.routes.push({ dst: "2001:db8:42:9::/64", via: "fe80::1", dev: "re6stnet-tcp", proto: "babel" });
  // Left by the killed babeld on a LAN interface (`--interface`): in no journal.
  m.routes.push({ dst: "2001:db8:42::/64", via: "fe80::7", dev: "eth0", proto: "babel" });
  // The operator's, inside the network or named like a re6st tap: never the node's to remove.
  m.links.set("re6stnet-op", { kind: "tap", up: true, mtu: 1500 });
  m.addresses.push({ address: "2001:db8:42:ff::1/64", dev: "eth0" });
  m.routes.push({ dst: "2001:db8:42:ff::/64", dev: "eth0", proto: "static" });
  w.files.set(
    JOURNAL,
    JSON.stringify([
      { kind: "tap", name: "re6stnet-tcp" },
      { kind: "address", spec: { address: "2001:db8:42:6::1/64", dev: "lo" } },
      { kind: "route", spec: { type: "unreachable", dst: "2001:db8:42::/48" } },
    ]),
  );
  const [node, run] = await started(w);
  assert.deepEqual(w.kernel.ops.slice(0, 5), [
    "ip -6 route del unreachable 2001:db8:42::/48",
    "ip -6 addr del 2001:db8:42:6::1/64 dev lo",
    "ip link del dev re6stnet-tcp",
    "ip -6 route del 2001:db8:42::/64 via fe80::7 dev eth0 proto babel",
    CLEAR_DRAIN,
  ]);
  assert.ok(
    w.log.lines.some((l) =>
      l.includes(
        "Removed 4 leftover(s) of a previous run: route unreachable 2001:db8:42::/48, " +
          "address 2001:db8:42:6::1/64 on lo, tap re6stnet-tcp, " +
          "route 2001:db8:42::/64 via fe80::7 dev eth0 proto babel",
      )
    ),
    w.log.lines.join("\n"),
  );
  node.stop();
  await run;
  assert.deepEqual(w.kernel.state(), [
    "address 2001:db8:42:ff::1/64 dev eth0",
    "link eth0 other up mtu 65536",
    "link lo other up mtu 65536",
    "link re6stnet-op tap up mtu 1500",
    "route 2001:db8:42:ff::/64 dev eth0 proto static",
  ]);
});

Deno.test("babeld's routes left after a clean stop are removed too", async () => {
  const w = await world();
  const [node, run] = await started(w);
  // A babeld that could not remove its routes (killed during teardown, say).
  w.kernel.model.routes.push({
    dst: "2001:db8:42:9::/64",
    via: "fe80::9",
    dev: "lo",
    proto: "babel",
  });
  w.kernel.model.routes.push({ dst: "10.1.0.0/16", via: "10.0.0.1", dev: "lo", proto: "babel" });
  node.stop();
  await run;
  assert.deepEqual(w.kernel.state(), [
    "link lo other up mtu 65536",
    "route 10.1.0.0/16 via 10.0.0.1 dev lo proto babel",
  ], "only routes outside the network stay");
});

Deno.test("each kernel change is in the journal file before it is made", async () => {
  let w: FakeWorld | null = null;
  const seen: string[] = [];
  w = await world({
    kernel: (store) =>
      createRecorderKernel({
        loopbackLinkLocalRoute: true,
        store,
        fail(line) {
          if (/ (add|tuntap add) /.test(line) && !line.includes("::/128")) {
            const stored = JSON.parse(w!.files.get(JOURNAL) ?? "[]") as unknown[];
            seen.push(`${line}: ${stored.length}`);
          }
          return undefined;
        },
      }),
  });
  const [node, run] = await started(w);
  // The n-th change made finds n entries in the file: the n − 1 before and itself.
  assert.deepEqual(seen, [
    "ip tuntap add dev re6stnet-tcp mode tap: 1",
    "ip -6 addr add 2001:db8:42:6::1/64 dev lo: 2",
    "ip -6 route add unreachable 2001:db8:42::/48: 3",
  ]);
  assert.equal(JSON.parse(w.files.get(JOURNAL)!).length, 3);
  node.stop();
  await run;
  assert.equal(w.files.has(JOURNAL), false, "removed with the run folder at a clean exit");
});

Deno.test("changes teardown cannot undo stay journaled, and the next start removes them", async () => {
  let failing = true;
  const fail = (line: string) =>
    failing && line === "ip link del dev re6stnet-tcp" ? "Device or resource busy" : undefined;
  const w = await world({
    kernel: (store) => createRecorderKernel({ loopbackLinkLocalRoute: true, store, fail }),
  });
  const [node, run] = await started(w);
  node.stop();
  await run;
  assert.deepEqual(w.removed, [], "the run folder is kept");
  assert.deepEqual(JSON.parse(w.files.get(JOURNAL)!), [{ kind: "tap", name: "re6stnet-tcp" }]);
  assert.ok(
    w.log.lines.some((l) => /Keeping \/run: its kernel journal lists 1 change/.test(l)),
  );
  failing = false;
  const db = new DatabaseSync(":memory:"); // the first run closed its cache
  // A new process on the same machine: a new kernel over the same model and journal file.
  const kernel = createRecorderKernel({ model: w.kernel.model, store: mapJournal(w.files) });
  const again = new Node(nodeOptions(BASE), {
    ...w.parts,
    kernel,
    openCache: () => openCache(db),
  });
  const second = again.run();
  await until(() => again.state === "running", "the second run up");
  assert.ok(
    w.log.lines.some((l) => /Removed 1 leftover\(s\) of a previous run: tap re6stnet-tcp/.test(l)),
  );
  again.stop();
  await second;
  assert.deepEqual(kernel.state(), ["link lo other up mtu 65536"]);
});

Deno.test("--up runs with the re6stnet_* environment and a failure stops the node cleanly", async () => {
  const w = await world({ upExit: 3 });
  const node = new Node(nodeOptions([...BASE, "--up", "true", "-I", "lo"]), w.parts);
  await assert.rejects(node.run(), /--up command failed with exit code 3: true/);
  assert.deepEqual(w.shellRuns[0], {
    cmd: "true",
    env: {
      re6stnet_iface: "lo",
      re6stnet_ip: "2001:db8:42:6::1",
      re6stnet_subnet: "2001:db8:42:6::/64",
      re6stnet_network: "2001:db8:42::/48",
    },
  });
  assert.deepEqual(w.kernel.state(), ["link lo other up mtu 65536"]);
  assert.ok(w.processes.every((p) => p.stopped));
  assert.equal(node.state, "stopped");
});

Deno.test("--daemon commands run in the background and are stopped at exit", async () => {
  const w = await world();
  const [node, run] = await started(w, ["--daemon", "sleep 1000"]);
  const d = w.processes.find((p) => p.name === "sh sleep 1000");
  assert.ok(d && !d.stopped);
  assert.equal(w.shellRuns[0].env.re6stnet_ip, "2001:db8:42:6::1");
  node.stop();
  await run;
  assert.ok(d.stopped);
});

Deno.test("babeld dying under a running node is restarted with back-off", async () => {
  const w = await world();
  const [node, run] = await started(w);
  const babeld = w.processes.find((p) => p.name === "babeld")!;
  babeld.exit({ code: 1, lastLines: ["kernel_route: File exists"] });
  await until(() => node.status().children[0].state === "restarting", "babeld restarting");
  assert.ok(
    w.log.lines.some((l) =>
      /babeld \(pid \d+\) exited unexpectedly \(exit code 1\); last log lines: kernel_route: File exists; restarting in 1 s/
        .test(l)
    ),
  );
  await w.clock.advance(1000);
  await until(() => w.babelConfigs.length === 2, "a second babeld");
  const info = node.status().children[0];
  assert.equal(info.state, "running");
  assert.equal(info.restarts, 1);
  node.stop();
  await run;
  assert.ok(w.processes.filter((p) => p.name === "babeld")[1].stopped);
});

function connect(serial: bigint, cn = "9/16"): ClientConnectEvent {
  return {
    type: "client-connect",
    dev: "re6stnet-tcp",
    commonName: cn,
    serial,
    trustedIp: "198.51.100.9",
    trustedPort: 40000,
    time: 0,
  };
}

Deno.test("a client is accepted on a server unless its certificate serial is revoked", async () => {
  const w = await world({ extra: { crl: [13] } });
  const [node, run] = await started(w);
  assert.deepEqual(await w.hookHandler!(connect(12n)), { accept: true });
  assert.deepEqual(node.status().tunnels.map((t) => [t.direction, t.peer]), [["server", "9/16"]]);
  assert.deepEqual(await w.hookHandler!(connect(13n)), {
    accept: false,
    reason: "certificate serial 13 is revoked",
  });
  assert.equal((await w.hookHandler!(connect(14n, "6/16")) as { accept: boolean }).accept, false);
  node.stop();
  await run;
});

Deno.test("the status snapshot shows identity, network configuration and children", async () => {
  const w = await world();
  const [node, run] = await started(w);
  const s = node.status();
  assert.equal(s.identity.cn, "6/16");
  assert.equal(s.identity.ip, "2001:db8:42:6::1");
  assert.equal(s.networkConfig.version, 1);
  assert.equal(s.networkConfig.hello, 15);
  assert.equal(s.registry.lastError, null);
  assert.ok(s.registry.lastContact !== null, "the registry was reached");
  assert.ok(Date.parse(s.certificate.renewAt) > Date.now());
  assert.deepEqual(s.children.map((c) => [c.name, c.state]), [
    ["babeld", "running"],
    ["openvpn re6stnet-tcp", "running"],
  ]);
  assert.equal(JSON.parse(JSON.stringify(s)).state, "running", "plain JSON data");
  node.stop();
  await run;
  assert.equal(node.state, "stopped");
});

Deno.test("command-line client count and max clients win over the network configuration", async () => {
  const w = await world();
  const [node, run] = await started(w, ["--client-count", "3", "--max-clients", "5"]);
  assert.equal(node.status().networkConfig.clientCount, 3);
  assert.equal(node.status().networkConfig.maxClients, 5);
  assert.match(w.processes[0].args.join(" "), /--max-clients 5 /);
  node.stop();
  await run;
});

Deno.test("--client mode runs one supervised client on re6stnet and no server", async () => {
  const w = await world();
  const [node, run] = await started(w, ["--client", "192.0.2.1,1194,tcp"]);
  assert.deepEqual(w.processes.map((p) => p.name), ["babeld", "openvpn re6stnet"]);
  const args = w.processes[1].args.join(" ");
  assert.match(args, /--client --remote 192.0.2.1 1194 tcp --ping-restart 60/);
  assert.ok(w.kernel.ops.includes("ip tuntap add dev re6stnet mode tap"));
  assert.ok(!w.kernel.ops.some((l) => l.includes("re6stnet-tcp")));
  assert.match(
    w.babelConfigs[0].configText,
    /^interface re6stnet type tunnel hello-interval 3.75$/m,
  );
  node.stop();
  await run;
  assert.deepEqual(w.kernel.state(), ["link lo other up mtu 65536"]);
});

Deno.test("the IPv4 payload gets its routes, and its address on lo without client tunnels", async () => {
  const w = await world({ extra: { ipv4: "10.42.0.0/16", ipv4_sublen: 8, client_count: 0 } });
  const [node, run] = await started(w);
  assert.deepEqual(w.kernel.ops.slice(3, 6), [
    "ip -4 addr add 10.42.1.1 dev lo",
    "ip -4 route add unreachable 10.42.0.0/16 proto static",
    "ip -4 route add unreachable 10.42.1.0/24 proto static",
  ]);
  assert.match(w.processes[0].args.join(" "), /--ifconfig 10.42.1.1 255.255.255.0/);
  assert.match(w.babelConfigs[0].configText, /^redistribute ip 10.42.1.1\/24 eq 24$/m);
  node.stop();
  await run;
  assert.deepEqual(w.kernel.state(), ["link lo other up mtu 65536"]);
});

Deno.test("a network that requires a newer protocol stops start-up with one line", async () => {
  const w = await world({ extra: { min_protocol: 11 } });
  const node = new Node(nodeOptions(BASE), w.parts);
  await assert.rejects(node.run(), /requires at least 11: upgrade re6st/);
  assert.deepEqual(w.processes, []);
});

Deno.test("an OpenVPN server that dies is restarted, doubling the delay while it keeps dying", async () => {
  const w = await world();
  const [node, run] = await started(w);
  const servers = () => w.processes.filter((p) => p.name === "openvpn re6stnet-tcp");
  servers()[0].exit({ code: 1, lastLines: ["TCP/UDP: Socket bind failed on local address"] });
  await until(() => w.log.lines.some((l) => /restarting in 1 s/.test(l)), "first restart");
  await w.clock.advance(1000);
  await until(() => servers().length === 2, "a second server");
  servers()[1].exit({ code: 1 });
  await until(() => w.log.lines.some((l) => /restarting in 2 s/.test(l)), "doubled delay");
  await w.clock.advance(1999);
  assert.equal(servers().length, 2, "not before 2 s");
  await w.clock.advance(1);
  await until(() => servers().length === 3, "a third server");
  const info = node.status().children.find((c) => c.name === "openvpn re6stnet-tcp")!;
  assert.equal(info.restarts, 2);
  assert.match(info.lastExit!, /^exit code 1/);
  node.stop();
  await run;
  assert.ok(servers()[2].stopped);
});

Deno.test("with --ovpnlog each OpenVPN process appends to <log>/<interface>.log", async () => {
  const w = await world();
  const [node, run] = await started(w, ["--ovpnlog"]);
  assert.match(w.processes[0].args.join(" "), /--log-append \/lg\/re6stnet-tcp.log/);
  node.stop();
  await run;
  // In --client mode the tap is `re6stnet`, like the node's own log: not the same file.
  const c = await world();
  const [cnode, crun] = await started(c, ["--ovpnlog", "--client", "192.0.2.1,1194,tcp"]);
  const client = c.processes.find((p) => p.name === "openvpn re6stnet")!;
  assert.match(client.args.join(" "), /--log-append \/lg\/re6stnet-client.log/);
  cnode.stop();
  await crun;
});

Deno.test("the node asks for a restart when its certificate becomes due for renewal", async () => {
  const key = await nodeKeyPem();
  const now = Date.now();
  const cert = nodeCertPem(key, { notAfter: new Date(now + 30 * 86400_000 + 3600_000) });
  const body = networkConfigBody(cert);
  const w = enrolledWorld(key, cert, () => body);
  const [node, run] = await started(w);
  let exit: NodeExit | null = null;
  run.then((e) => exit = e);
  await w.clock.advance(3500_000);
  assert.equal(exit, null);
  await w.clock.advance(200_000);
  await until(() => exit !== null, "the node ending");
  assert.deepEqual(exit, { kind: "restart", reason: "certificate or CA renewal is due" });
  assert.equal(node.state, "stopped");
  assert.deepEqual(w.kernel.state(), ["link lo other up mtu 65536"]);
});

Deno.test("errors and warnings, with their prefix, show in the status snapshot", async () => {
  const w = await world();
  const [node, run] = await started(w);
  w.processes.find((p) => p.name === "babeld")!.exit({ code: 2, lastLines: ["boom"] });
  await until(() => node.status().errors.length > 0, "an error in the status");
  const e = node.status().errors.at(-1)!;
  assert.match(
    e.message,
    /^error: babeld \(pid \d+\) exited unexpectedly \(exit code 2\); last log lines: boom/,
  );
  node.stop();
  await run;
});

Deno.test("the control socket answers a status document valid against its schema", async () => {
  const w = await world();
  const [node, run] = await started(w);
  await w.hookHandler!(connect(12n));
  const doc = w.control!({ request: "status" }, NEVER) as Record<string, unknown>;
  assert.deepEqual(validateSchema(doc, STATUS_JSON_SCHEMA), []);
  const d = doc as unknown as StatusDocument;
  assert.equal(d.state, "running");
  assert.equal(d.identity.cn, "6/16");
  assert.deepEqual(
    d.tunnels.map((t) => [t.direction, t.peer, t.interface, t.protocol, t.remote]),
    [["server", "9/16", "re6stnet-tcp", "tcp", "198.51.100.9 40000"]],
  );
  assert.deepEqual(d.children.map((c) => c.name), ["babeld", "openvpn re6stnet-tcp"]);
  assert.match(
    String((w.control!({ request: "nope" }, NEVER) as { error: string }).error),
    /unknown/,
  );
  node.stop();
  await run;
  assert.equal(w.control, null, "the control socket is closed at exit");
});

Deno.test("a stop while --up runs ends the command (its stop signal aborts) and the node", async () => {
  const w = await world();
  let upSignal: AbortSignal | undefined;
  w.parts.shell.run = (_cmd, _env, signal) => {
    upSignal = signal;
    return new Promise<number>(() => {}); // never ends by itself
  };
  const node = new Node(nodeOptions([...BASE, "--up", "sleep 1000 & wait"]), w.parts);
  const run = node.run();
  await until(() => upSignal !== undefined, "--up started");
  assert.equal(upSignal!.aborted, false);
  node.stop("SIGTERM");
  assert.deepEqual(await run, { kind: "stopped", reason: "SIGTERM" });
  assert.equal(upSignal!.aborted, true, "the --up command was told to stop");
  assert.deepEqual(w.kernel.state(), ["link lo other up mtu 65536"]);
});

Deno.test("the state folder (cache.db with the Babel keys) and the run folder are private", async () => {
  const w = await world();
  const [node, run] = await started(w);
  assert.equal(w.dirs.get("/st"), 0o700);
  assert.equal(w.dirs.get("/run"), 0o700);
  node.stop();
  await run;
});

Deno.test("when an OpenVPN server dies its clients are forgotten", async () => {
  const w = await world();
  const [node, run] = await started(w);
  assert.deepEqual(await w.hookHandler!(connect(12n)), { accept: true });
  assert.deepEqual(node.status().tunnels.map((t) => [t.peer, t.interface]), [
    ["9/16", "re6stnet-tcp"],
  ]);
  w.processes.find((p) => p.name === "openvpn re6stnet-tcp")!.exit({ code: 1 });
  await until(() => node.status().tunnels.length === 0, "the served client forgotten");
  assert.ok(
    w.log.lines.some((l) => /OpenVPN server re6stnet-tcp exited: forgetting its 1 client/.test(l)),
  );
  node.stop();
  await run;
});

Deno.test("a key rotation swaps babeld's sign key in place at the shared switch time", async () => {
  const key = await nodeKeyPem();
  const cert = nodeCertPem(key);
  const pub = parseCertificate(cert).publicKey;
  const K0 = Uint8Array.from({ length: 16 }, (_, i) => i);
  let body = networkConfigBody(cert);
  const w = enrolledWorld(key, cert, () => body);
  const [node, run] = await started(w);
  const server = w.processes.find((p) => p.name === "openvpn re6stnet-tcp")!;
  const startedAt = node.status().startedAt;
  // The registry tells its node through the ::1 relay; the node fetches 1 s later.
  const announce = async (version: number, extra: Record<string, unknown>, babelKey = K0) => {
    body = networkConfigBody(cert, { version, extra, babelKey });
    await w.sockets[0].onDatagram("::1", 40000, encodeRelay("0000000000000110", 0));
    await w.clock.advance(1000);
    await until(() => node.status().networkConfig.version === version, `version ${version}`);
  };
  // Phase 1: a second key is accepted. Stock babeld checks the sign key only: nothing to do.
  await announce(2, { babel_hmac_accept: b64(rsaEncrypt(pub, KEY2)) });
  assert.deepEqual(w.babel.commands, []);
  // Phase 2: sign with the new key, at the time the registry set for every node.
  const switchAt = w.clock.now() + 30_000;
  await announce(3, {
    babel_hmac_accept: b64(rsaEncrypt(pub, K0)),
    babel_key_switch_at: switchAt / 1000,
  }, KEY2);
  assert.deepEqual(w.babel.commands, [], "not before the switch time");
  await w.clock.advance(30_000);
  await until(() => w.babel.commands.length === 1, "the key switched");
  assert.equal(
    w.babel.commands[0],
    "key type blake2s128 id sign value f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
  );
  assert.equal(w.babelConfigs.length, 1, "babeld was not restarted");
  assert.equal(server.stopped, false, "the OpenVPN server still runs");
  assert.equal(node.status().startedAt, startedAt, "the node did not restart");
  assert.ok(w.log.lines.some((l) => /babeld signs with the new Babel key now/.test(l)));
  assert.ok(!w.log.lines.some((l) => l.includes("f0f1f2f3")), "the key is never logged");
  // Phase 3: only the new key; babeld already signs with it.
  await announce(4, {}, KEY2);
  assert.equal(w.babel.commands.length, 1);
  // babel_default changes need a new babeld: it restarts alone, with the key in force.
  await announce(5, { babel_default: "rtt-max 400" }, KEY2);
  await until(() => w.babelConfigs.length === 2, "babeld restarted");
  assert.match(w.babelConfigs[1].configText, /id sign value f0f1f2f3/);
  assert.match(w.babelConfigs[1].configText, /^default rtt-max 400 key sign$/m);
  assert.equal(server.stopped, false);
  node.stop();
  await run;
});

/** Babel's tables on a node whose server tunnel re6stnet-tcp goes to 9/16. */
function routedSnapshot(): BabelSnapshot {
  const route = (over: Partial<BabelSnapshot["routes"][number]>) => ({
    id: "r1",
    prefix: "2001:db8:42:9::",
    plen: 64,
    from: "::",
    fromPlen: 0,
    installed: true,
    routerId: "02:00:00:00:00:00:00:09",
    metric: 96,
    refmetric: 0,
    via: "fe80::9",
    iface: "re6stnet-tcp",
    ...over,
  });
  return {
    interfaces: [],
    neighbours: [
      {
        id: "n1",
        address: "fe80::9",
        iface: "re6stnet-tcp",
        reach: 0xffff,
        ureach: 0,
        rxcost: 96,
        txcost: 96,
        cost: 96,
      },
      {
        id: "n2",
        address: "fe80::5",
        iface: "re6stnet1",
        reach: 0xffff,
        ureach: 0,
        rxcost: 96,
        txcost: 96,
        cost: 96,
      },
    ],
    xroutes: [],
    routes: [
      route({}),
      route({
        id: "r2",
        installed: false,
        metric: 352,
        refmetric: 256,
        via: "fe80::5",
        iface: "re6stnet1",
      }),
      route({
        id: "r3",
        prefix: "2001:db8:42:5::",
        routerId: "02:00:00:00:00:00:00:05",
        via: "fe80::5",
        iface: "re6stnet1",
      }),
    ],
  };
}

Deno.test("the control socket tells which route Babel chose toward an address and the others", async () => {
  const w = await world({ snapshot: routedSnapshot() });
  const [node, run] = await started(w);
  await w.hookHandler!(connect(12n));
  const answer = w.control!(
    { request: "route", address: "2001:db8:42:9::1" },
    NEVER,
  ) as RouteAnswer;
  assert.equal(answer.local, false);
  assert.deepEqual(answer.route, {
    prefix: "2001:db8:42:9::/64",
    from: null,
    node: "9/16",
    metric: 96,
    refmetric: 0,
    nextHop: "fe80::9",
    interface: "re6stnet-tcp",
    peer: "9/16",
    tunnel: { direction: "server", protocol: "tcp", peer: "9/16" },
    installed: true,
    routerId: "02:00:00:00:00:00:00:09",
  });
  assert.deepEqual(
    answer.alternatives.map((h) => [h.nextHop, h.interface, h.peer, h.metric, h.installed]),
    [["fe80::5", "re6stnet1", "5/16", 352, false]],
  );
  const text = renderRoute(answer);
  assert.match(
    text,
    /chosen: +2001:db8:42:9::\/64 via fe80::9 on re6stnet-tcp \(server tunnel, tcp\), peer 9\/16, metric 96 toward node 9\/16/,
  );
  assert.match(
    text,
    /alternatives: 2001:db8:42:9::\/64 via fe80::5 on re6stnet1, peer 5\/16, metric 352/,
  );
  const own = w.control!({ request: "route", address: "2001:db8:42:6::1" }, NEVER) as RouteAnswer;
  assert.deepEqual([own.local, own.route, own.alternatives], [true, null, []]);
  assert.match(renderRoute(own), /own subnet[\s\S]*none: babeld installed no route/);
  const bad = w.control!({ request: "route", address: "10.0.0.1" }, NEVER) as { error: string };
  assert.match(bad.error, /must be an IPv6 address/);
  node.stop();
  await run;
});

Deno.test("a follower gets one line per change until the node stops", async () => {
  const snap = routedSnapshot();
  const w = await world({ snapshot: snap });
  const [node, run] = await started(w);
  const stream = w.control!({ request: "follow" }, NEVER);
  assert.ok(isControlStream(stream));
  const lines = stream.lines[Symbol.asyncIterator]();
  const first = (await lines.next()).value as Record<string, unknown>;
  assert.deepEqual(
    [first.event, first.node, first.state, first.tunnels, first.routes],
    ["following", "6/16", "running", 0, 2],
  );
  await w.hookHandler!(connect(12n)); // a tunnel from 9/16
  snap.routes.splice(2, 1); // the route to 5/16 is gone
  const next = lines.next();
  await w.clock.advance(FOLLOW_INTERVAL_MS);
  const events = [(await next).value as Record<string, unknown>];
  for (let i = 0; i < 3; i++) events.push((await lines.next()).value as Record<string, unknown>);
  assert.deepEqual(events.map((e) => [e.event, e.interface ?? e.node, e.peer]), [
    ["tunnel-opened", "re6stnet-tcp", "9/16"],
    ["tunnel-established", "re6stnet-tcp", "9/16"],
    ["peer-lost", undefined, "5/16"], // identified by the route it originated
    ["route-lost", "5/16", undefined],
  ]);
  assert.match(String(events[0].time), /^\d{4}-\d\d-\d\dT/);
  const last = lines.next();
  node.stop();
  assert.equal(((await last).value as Record<string, unknown>).event, "node-stopping");
  assert.equal((await lines.next()).done, true);
  await run;
});

Deno.test("a node started in the middle of a key switch signs with the previous key until the switch time", async () => {
  const key = await nodeKeyPem();
  const cert = nodeCertPem(key);
  const pub = parseCertificate(cert).publicKey;
  const K0 = Uint8Array.from({ length: 16 }, (_, i) => i);
  let body: Uint8Array = new Uint8Array();
  const w = enrolledWorld(key, cert, () => body);
  // Phase 2, fetched at start: sign with KEY2 from 20 s on, K0 still accepted.
  body = networkConfigBody(cert, {
    babelKey: KEY2,
    extra: {
      babel_hmac_accept: b64(rsaEncrypt(pub, K0)),
      babel_key_switch_at: (w.clock.now() + 20_000) / 1000,
    },
  });
  const [node, run] = await started(w);
  assert.match(w.babelConfigs[0].configText, /id sign value 000102030405060708090a0b0c0d0e0f/);
  assert.ok(w.log.lines.some((l) => /key rotation under way/i.test(l)));
  assert.deepEqual(w.babel.commands, []);
  await w.clock.advance(20_000);
  await until(() => w.babel.commands.length === 1, "the key switched");
  assert.equal(
    w.babel.commands[0],
    "key type blake2s128 id sign value f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
  );
  node.stop();
  await run;
});

Deno.test("while babeld is away the status shows no stale Babel routes", async () => {
  const w = await world({ snapshot: routedSnapshot() });
  const [node, run] = await started(w);
  await w.hookHandler!(connect(12n));
  const up = node.status().babel;
  assert.deepEqual([up.running, up.knownNodes > 0, up.neighbours.length > 0], [true, true, true]);
  (w.babel as { connected: boolean }).connected = false;
  assert.deepEqual(node.status().babel, {
    running: false,
    neighbours: [],
    routes: 0,
    knownNodes: 0,
  });
  node.stop();
  await run;
});
