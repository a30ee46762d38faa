import assert from "node:assert/strict";
import { cnFromPrefix } from "../../core/addressing.ts";
import {
  addr,
  clientConnect,
  ll,
  managerBench,
  P,
  route,
  snapshot,
} from "../helpers/tunnel_fakes.ts";

type Bench = ReturnType<typeof managerBench>;

/** A node serving P(1), with client tunnels to P(4), P(5) and P(6) all up. */
async function threeTunnels(): Promise<Bench> {
  const b = managerBench({ settings: { clientCount: 3, tunnelRefreshS: 30 } });
  b.serve(P(1), "re6stnet-tcp", 1n);
  for (const n of [4, 5, 6]) {
    await b.manager.makeTunnel(P(n), addr(n));
    await b.manager.routeUp({
      type: "route-up",
      dev: b.manager.clients.get(P(n))!.iface,
      commonName: cnFromPrefix(P(n)),
      serial: BigInt(n),
      time: Math.floor(b.clock.now() / 1000) + 1,
    });
  }
  // P(5) brings the fewest routes.
  b.babel.snap = snapshot([
    { prefix: P(1), iface: "re6stnet-tcp" },
    { prefix: P(4), iface: "re6stnet1", behind: [P(7), P(8)] },
    { prefix: P(5), iface: "re6stnet2" },
    { prefix: P(6), iface: "re6stnet3", behind: [P(10)] },
  ]);
  b.peers.connected = new Set([P(4), P(5), P(6)]);
  b.babel.commands = [];
  return b;
}

Deno.test("every tunnel_refresh the worst tunnel is drained, then closed once both sides agree", async () => {
  const b = await threeTunnels();
  await b.manager.tick();
  assert.equal(b.manager.removals.size, 0, "not before tunnel_refresh");
  await b.clock.advance(31_000);
  await b.manager.tick();
  assert.ok(b.manager.removals.has(P(5)));
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(2), [P(5)]);
  assert.deepEqual([...b.host.drained], ["re6stnet2"], "Babel dropped on its tap");
  assert.deepEqual(b.babel.commands, [], "babeld itself is never told to flush a tap");
  assert.equal(b.manager.clients.size, 3, "traffic keeps flowing until the peer agrees");
  b.manager.onKillResponse(P(5));
  await b.manager.tick();
  assert.equal(b.manager.clients.has(P(5)), true, "our routes still use the tap");
  // Two hellos later our babeld lost P(5) as a neighbour and routes around the tunnel.
  b.babel.snap = snapshot([
    { prefix: P(1), iface: "re6stnet-tcp" },
    { prefix: P(4), iface: "re6stnet1", behind: [P(5), P(7), P(8)] },
    { prefix: P(6), iface: "re6stnet3", behind: [P(10)] },
  ]);
  await b.manager.tick();
  assert.equal(b.manager.clients.has(P(5)), false);
  assert.ok(b.host.last("re6stnet2")!.stopped);
  assert.deepEqual([...b.host.drained], [], "the tap lets Babel through again for reuse");
  assert.equal(b.manager.removals.size, 0);
});

Deno.test("a code 3 nobody waits for is ignored", async () => {
  const b = await threeTunnels();
  b.manager.onKillResponse(P(4));
  await b.manager.tick();
  assert.equal(b.manager.clients.size, 3);
});

Deno.test("without an answer the retired tunnel closes after 2 × timeout", async () => {
  const b = await threeTunnels();
  b.peers.connected.delete(P(5));
  await b.clock.advance(31_000);
  await b.manager.tick();
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(2), [], "no session: only a hello0");
  b.peers.connected.add(P(5));
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(2), [P(5)], "asked again once the session is up");
  await b.clock.advance(31_000);
  await b.manager.tick();
  assert.equal(b.manager.clients.has(P(5)), true);
  await b.clock.advance(2_000);
  await b.manager.tick();
  assert.equal(b.manager.clients.has(P(5)), false);
  assert.ok(b.log.lines.some((l) => l.includes("no answer from the peer")));
});

Deno.test("a retirement ends early when the tunnel dies by itself", async () => {
  const b = await threeTunnels();
  await b.clock.advance(31_000);
  await b.manager.tick();
  b.host.last("re6stnet2")!.exit();
  await b.manager.tick();
  assert.equal(b.manager.removals.size, 0);
  assert.equal(b.manager.clients.has(P(5)), false);
});

Deno.test("the server side answers code 3 once its routes no longer go through the client", async () => {
  const b = managerBench();
  b.connect(clientConnect(P(3), "re6stnet-tcp", 3n));
  b.peers.connected = new Set([P(3), P(4)]);
  b.manager.nextRefresh = Infinity;
  b.babel.snap = snapshot([{ prefix: P(3), iface: "re6stnet-tcp", behind: [P(7)] }]);
  b.manager.onKillRequest(P(4));
  assert.equal(b.manager.removals.size, 0, "P(4) is not our client: ignored");
  b.manager.onKillRequest(P(3));
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(3), [], "P(7) still routed through P(3)");
  // It stopped talking Babel on its tunnel: our routes moved, its own prefix is learned
  // elsewhere too (the old route lingers, not installed).
  b.babel.snap = snapshot([{ prefix: P(4), iface: "re6stnet1", behind: [P(3), P(7)] }], [
    route(P(3), ll(P(3)), "re6stnet-tcp", 0, { installed: false }),
  ]);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(3), [P(3)]);
  assert.equal(b.manager.removals.size, 0);
});

Deno.test("the server side answers anyway after timeout, or 2 × hello for the client's own prefix", async () => {
  const b = managerBench({ settings: { helloS: 4, timeoutS: 16 } });
  b.serve(P(3), "re6stnet-tcp", 3n);
  b.serve(P(5), "re6stnet-tcp", 5n);
  b.peers.connected = new Set([P(3), P(5)]);
  b.manager.nextRefresh = Infinity;
  b.babel.snap = snapshot([
    { prefix: P(3), iface: "re6stnet-tcp", behind: [P(7)] },
    { prefix: P(5), iface: "re6stnet-tcp" },
  ]);
  b.manager.onKillRequest(P(3));
  b.manager.onKillRequest(P(5));
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(3), []);
  await b.clock.advance(8_000);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(3), [P(5)], "only its own prefix left: 2 × hello");
  await b.clock.advance(8_000);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(3), [P(5), P(3)], "timeout reached");
});

Deno.test("a served client leaving aborts the server-side removal", () => {
  const b = managerBench();
  b.connect(clientConnect(P(3), "re6stnet-tcp", 3n));
  b.manager.onKillRequest(P(3));
  assert.equal(b.manager.removals.size, 1);
  b.disconnect({
    type: "client-disconnect",
    dev: "re6stnet-tcp",
    commonName: cnFromPrefix(P(3)),
    serial: 3n,
    trustedIp: "10.0.0.3",
    trustedPort: 5000,
    time: 0,
  });
  assert.equal(b.manager.removals.size, 0);
  assert.equal(b.served.size, 0);
});

Deno.test("the run loop ticks every 5 s, and every second while a removal is in progress", async () => {
  const b = await threeTunnels();
  const end = new AbortController();
  let ticks = 0;
  const tick = b.manager.tick.bind(b.manager);
  b.manager.tick = () => (ticks++, tick());
  const loop = b.manager.run(end.signal);
  await b.clock.advance(0);
  assert.equal(ticks, 1);
  await b.clock.advance(5_000);
  assert.equal(ticks, 2);
  b.manager.onKillRequest(P(1));
  await b.clock.advance(0);
  assert.equal(ticks, 3, "woken at once");
  await b.clock.advance(1_000);
  assert.equal(ticks, 4);
  end.abort();
  await loop;
});

Deno.test("code 2 goes before the cost is raised and is repeated every 5 s until code 3", async () => {
  const b = await threeTunnels();
  await b.clock.advance(31_000);
  await b.manager.tick();
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(2), [P(5)]);
  await b.clock.advance(2_000);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(2), [P(5)]);
  await b.clock.advance(3_000);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(2), [P(5), P(5)]);
});

Deno.test("a peer whose tunnel was just retired is not chosen again for a while", async () => {
  const b = await threeTunnels();
  for (const n of [5, 11]) b.cache.addPeer(P(n), addr(n));
  await b.clock.advance(31_000);
  await b.manager.tick();
  await b.manager.tick();
  // P(5) is still known through P(4): a distant candidate, like P(11).
  b.babel.snap = snapshot([
    { prefix: P(1), iface: "re6stnet-tcp" },
    { prefix: P(4), iface: "re6stnet1", behind: [P(5), P(11)] },
    { prefix: P(6), iface: "re6stnet3" },
  ]);
  b.manager.onKillResponse(P(5));
  await b.manager.tick();
  await b.manager.tick();
  assert.ok(b.manager.clients.has(P(11)));
  assert.equal(b.manager.clients.has(P(5)), false);
});

Deno.test("without nftables the tunnel closes on code 3 without waiting for routes to move", async () => {
  const b = await threeTunnels();
  b.host.failKernel = "nft: command not found";
  await b.clock.advance(31_000);
  await b.manager.tick();
  await b.manager.tick();
  b.manager.onKillResponse(P(5));
  await b.manager.tick();
  assert.equal(b.manager.clients.has(P(5)), false);
  assert.ok(b.log.lines.some((l) => l.includes("Cannot drain the tunnel to 5/16")));
});
