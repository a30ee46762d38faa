// The node with UPnP (PROTOCOL.md §7.10) on fake parts and a fake gateway: when it maps its
// ports, what it advertises, what it removes at stop, and what --ip upnp does without one.
import assert from "node:assert/strict";
import type { NodeCache } from "../../core/node/cache.ts";
import { Node, type NodeExit } from "../../core/node/node.ts";
import {
  enrolledWorld,
  type FakeWorld,
  networkConfigBody,
  nodeCertPem,
  nodeKeyPem,
  nodeOptions,
  TEST_NODE_ARGS as BASE,
} from "../helpers/node_fixtures.ts";
import { type FakeGateway, fakeGateway } from "../helpers/upnp_fake.ts";
import { settled } from "../helpers/wait.ts";

/** Lets the node's promise chains run until `cond` holds (no time passes). */
const until = settled;

/** A node on a LAN whose gateway is `gw`, started with `args`. */
async function start(
  gw: FakeGateway,
  args: string[],
): Promise<{ w: FakeWorld; node: Node; run: Promise<NodeExit>; cache: () => NodeCache }> {
  const key = await nodeKeyPem();
  const cert = nodeCertPem(key);
  const body = networkConfigBody(cert);
  const w = enrolledWorld(key, cert, () => body);
  w.parts.portMapper = () => gw;
  const open = w.parts.openCache;
  let cache: NodeCache | null = null;
  w.parts.openCache = (path) => cache = open(path);
  const node = new Node(nodeOptions([...BASE, ...args]), w.parts);
  const run = node.run();
  run.catch(() => {});
  await until(() => node.state !== "starting", "the node left start-up");
  assert.equal(node.state, "running");
  return { w, node, run, cache: () => cache! };
}

Deno.test("without an IPv4 --ip the node maps its server on the gateway and advertises it", async () => {
  const gw = fakeGateway();
  const { w, node, run, cache } = await start(gw, []);
  assert.deepEqual(gw.table.map((m) => [m.protocol, m.externalPort, m.internalPort]), [
    ["TCP", 1194, 1194],
  ]);
  assert.equal(gw.table[0].description, "re6st 6/16");
  assert.equal(cache().ownAddress(), "11.42.0.254,1194,tcp");
  assert.ok(
    w.log.lines.some((l) =>
      /address list, mapped by the UPnP gateway: 11\.42\.0\.254,1194,tcp/.test(l)
    ),
  );
  const upnp = node.status().upnp!;
  assert.equal(upnp.state, "mapped");
  assert.equal(upnp.externalIp, "11.42.0.254");
  assert.deepEqual(upnp.mappings.map((m) => `${m.protocol} ${m.externalPort}`), ["tcp 1194"]);
  assert.ok(w.files.has("/run/upnp.json"), "recorded for the next start after a kill");
  node.stop();
  await run;
  assert.deepEqual(gw.table, [], "the mapping is removed at stop");
  assert.deepEqual(w.removed, ["/run/upnp.json", "/run"], "the record, then the run folder");
});

Deno.test("--ip upnp without a gateway advertises no IPv4 address and says so once", async () => {
  const gw = fakeGateway();
  gw.present = false;
  const { w, node, run, cache } = await start(gw, ["--ip", "upnp", "--ip", "2001:db8:7::1"]);
  assert.equal(cache().ownAddress(), "", "no IPv4 entry, no IPv6 server");
  assert.equal(node.status().upnp?.state, "client-only");
  assert.equal(w.log.lines.filter((l) => /No UPnP gateway answered/.test(l)).length, 1);
  node.stop();
  await run;
});

Deno.test("an IPv4 --ip or --ip any never asks a gateway", async () => {
  for (const ip of ["192.0.2.7", "any"]) {
    const gw = fakeGateway();
    const { node, run, cache } = await start(gw, ["--ip", ip]);
    assert.deepEqual(gw.calls, [], `--ip ${ip}`);
    assert.equal(node.status().upnp, null);
    if (ip !== "any") assert.equal(cache().ownAddress(), "192.0.2.7,1194,tcp");
    node.stop();
    await run;
  }
});

Deno.test("a mapping a stop could not remove keeps the run folder for the next start", async () => {
  const gw = fakeGateway();
  const { w, node, run } = await start(gw, []);
  gw.present = false;
  node.stop();
  await run;
  assert.deepEqual(w.removed, [], "the run folder (and its upnp.json) is kept");
  assert.ok(w.log.lines.some((l) => /UPnP mappings could not all be removed/.test(l)));
});
