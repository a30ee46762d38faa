import assert from "node:assert/strict";
import { cnFromPrefix } from "../../core/addressing.ts";
import type { ClientDisconnectEvent, RouteUpEvent } from "../../core/openvpn/hooks.ts";
import { revocationEffects } from "../../core/node/revocation.ts";
import {
  addr,
  clientConnect as connect,
  managerBench,
  P,
  snapshot,
} from "../helpers/tunnel_fakes.ts";

type Bench = ReturnType<typeof managerBench>;

function disconnect(p: string, dev = "re6stnet-tcp"): ClientDisconnectEvent {
  return { ...connect(p, dev), type: "client-disconnect" };
}

function routeUp(b: Bench, p: string, iface: string, o: Partial<RouteUpEvent> = {}): RouteUpEvent {
  return {
    type: "route-up",
    dev: iface,
    commonName: cnFromPrefix(p),
    serial: 200n,
    time: Math.floor(b.clock.now() / 1000) + 1,
    ...o,
  };
}

Deno.test("a fresh node bootstraps from the registry and opens a TCP tunnel to that peer", async () => {
  const b = managerBench({
    bootstrap: () => Promise.resolve({ prefix: P(1), addresses: addr(1) }),
  });
  await b.manager.tick();
  assert.equal(b.bootstrapCalls.length, 1);
  assert.deepEqual(b.host.taps, ["re6stnet1"]);
  assert.deepEqual(b.babel.commands, ["interface re6stnet1 type tunnel"]);
  const p = b.host.last("re6stnet1")!;
  assert.deepEqual(p.remote, { ip: "10.0.0.1", port: 1194, proto: "tcp" }, "udp is disabled");
  assert.equal(b.cache.peerAddress(P(1)), null, "being tried: try = 1");
  assert.ok(b.manager.bootstrap.backingOff, "bootstrap back-off armed");
  await b.manager.routeUp(routeUp(b, P(1), "re6stnet1"));
  assert.equal(b.cache.peerAddress(P(1)), addr(1), "tunnel up: usable again");
});

Deno.test("a bootstrap peer with our own prefix is ignored", async () => {
  const b = managerBench({
    bootstrap: () => Promise.resolve({ prefix: P(9), addresses: addr(9) }),
  });
  await b.manager.tick();
  assert.equal(b.host.processes.length, 0);
  assert.ok(b.log.lines.some((l) => l.includes("own prefix")));
});

Deno.test("the registry node never asks for a bootstrap peer and uses its cache", async () => {
  const b = managerBench({ prefix: P(1) });
  b.cache.addPeer(P(4), addr(4));
  await b.manager.tick();
  assert.equal(b.bootstrapCalls.length, 0);
  assert.equal(b.host.last("re6stnet1")?.remote.ip, "10.0.0.4");
});

Deno.test("distant peers are asked their address (code 1), and the answer opens a tunnel", async () => {
  const b = managerBench({ settings: { clientCount: 2 } });
  b.babel.snap = snapshot([{ prefix: P(1), iface: "re6stnet-tcp", behind: [P(5), P(6)] }]);
  b.serve(P(1), "re6stnet-tcp", 1n);
  b.peers.connected = new Set([P(5)]);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(1), [P(5)], "P(6) has no session: only a hello0 went out");
  assert.ok(b.manager.opener.connecting.has(P(5)));
  assert.deepEqual(b.peers.probes, [P(1)], "registry reachable: session kept up");
  await b.manager.onAddress(P(5), addr(5));
  assert.equal(b.host.last("re6stnet1")?.remote.ip, "10.0.0.5");
  assert.equal(b.bootstrapCalls.length, 0);
});

Deno.test("a cached address opens the tunnel without asking the peer", async () => {
  const b = managerBench();
  b.babel.snap = snapshot([{ prefix: P(1), iface: "re6stnet-tcp", behind: [P(5)] }]);
  b.serve(P(1), "re6stnet-tcp", 1n);
  b.cache.addPeer(P(5), addr(5));
  await b.manager.tick();
  assert.equal(b.peers.sent.length, 0);
  assert.equal(b.host.last("re6stnet1")?.remote.ip, "10.0.0.5");
});

Deno.test("a node that serves nobody opens at most two tunnels, one serving opens client_count", async () => {
  const distant = [P(5), P(6), P(7), P(8), P(10)];
  const b = managerBench({ settings: { clientCount: 4 } });
  for (const p of distant) b.cache.addPeer(p, addr(parseInt(p, 2)));
  b.babel.snap = snapshot([{ prefix: P(1), iface: "re6stnet-tcp", behind: distant }]);
  await b.manager.tick();
  assert.equal(b.manager.clients.size, 2);
  b.serve(P(1), "re6stnet-tcp", 1n);
  await b.manager.tick();
  assert.equal(b.manager.clients.size, 4);
});

Deno.test("--neighbour peers are opened first", async () => {
  const b = managerBench({ settings: { clientCount: 1 }, neighbours: [P(7)], random: Math.random });
  for (const n of [5, 6, 7, 8]) b.cache.addPeer(P(n), addr(n));
  b.babel.snap = snapshot([{ prefix: P(1), iface: "re6stnet-tcp", behind: [5, 6, 7, 8].map(P) }]);
  await b.manager.tick();
  assert.deepEqual(b.manager.clients.list().map((t) => t.prefix), [P(7)]);
});

Deno.test("never two tunnels between one pair, never a tunnel to ourselves", async () => {
  const b = managerBench();
  assert.equal(await b.manager.makeTunnel(P(9), addr(9)), false);
  b.serve(P(3), "re6stnet-tcp", 1n);
  assert.equal(await b.manager.makeTunnel(P(3), addr(3)), false);
  assert.equal(await b.manager.makeTunnel(P(4), addr(4)), true);
  assert.equal(await b.manager.makeTunnel(P(4), addr(4)), false);
  assert.equal(await b.manager.makeTunnel(P(5), "10.0.0.5,1194,udp"), false, "udp disabled");
  assert.equal(b.host.processes.length, 1);
});

Deno.test("of two crossed tunnels, the node with the smaller prefix closes its client", async () => {
  const small = managerBench({ prefix: P(2) });
  await small.manager.makeTunnel(P(4), addr(4));
  assert.deepEqual(small.connect(connect(P(4))), { accept: true });
  await small.manager.tick();
  assert.equal(small.manager.clients.size, 0);
  assert.ok(small.host.processes[0].stopped);
  const big = managerBench({ prefix: P(8) });
  await big.manager.makeTunnel(P(4), addr(4));
  big.connect(connect(P(4)));
  await big.manager.tick();
  assert.equal(big.manager.clients.size, 1, "the bigger prefix keeps its client");
});

Deno.test("a failure closing a duplicate tunnel is logged, not an unhandled rejection", async () => {
  const small = managerBench({ prefix: P(2) });
  await small.manager.makeTunnel(P(4), addr(4));
  small.cache.setTry = () => {
    throw new Error("disk I/O error");
  };
  small.connect(connect(P(4)));
  await small.manager.tick();
  assert.equal(small.manager.clients.size, 0);
  assert.ok(
    small.log.lines.some((l) =>
      /ERROR Cannot close our duplicate tunnel to 4\/16: disk I\/O error/.test(l)
    ),
    small.log.lines.join("\n"),
  );
});

Deno.test("revoked certificates: clients refused, tunnels to revoked servers closed", async () => {
  const b = managerBench({ settings: { crl: new Set([13n]) } });
  const a = b.connect(connect(P(3), "re6stnet-tcp", 13n));
  assert.equal(a.accept, false);
  assert.equal(b.served.size, 0);
  await b.manager.makeTunnel(P(4), addr(4));
  await b.manager.routeUp(routeUp(b, P(4), "re6stnet1", { serial: 13n }));
  assert.equal(b.manager.clients.size, 0);
  await b.manager.makeTunnel(P(5), addr(5));
  await b.manager.routeUp(routeUp(b, P(5), "re6stnet1", { serial: 14n }));
  b.settings.crl = new Set([14n]);
  const effects = (crl: ReadonlySet<bigint>) =>
    revocationEffects(crl, {
      ownSerial: 1n,
      tunnels: b.manager.clients.list(),
      served: b.served.entries(),
      forgotten: [],
    });
  assert.deepEqual(effects(b.settings.crl).close, [P(5)]);
  assert.equal(await b.manager.closeTunnels(effects(b.settings.crl).close, "revoked"), 1);
  assert.equal(b.manager.clients.size, 0);
  b.connect(connect(P(6), "re6stnet-tcp", 15n));
  assert.deepEqual(effects(new Set([15n])).servedRevoked, ["6/16"]);
  b.disconnect(disconnect(P(6)));
  assert.deepEqual(effects(new Set([15n])).servedRevoked, []);
  assert.equal(effects(new Set([1n])).renew, true, "our own serial");
});

Deno.test("a tunnel that dies before coming up tries the next address, then gives up", async () => {
  const b = managerBench({ settings: { disabledProtos: [] } });
  b.cache.addPeer(P(4), addr(4));
  b.babel.snap = snapshot([{ prefix: P(1), iface: "re6stnet-tcp" }]);
  b.serve(P(1), "re6stnet-tcp", 1n);
  await b.manager.makeTunnel(P(4), addr(4));
  assert.equal(b.host.last("re6stnet1")?.remote.proto, "udp");
  b.host.last("re6stnet1")!.exit();
  await b.manager.tick();
  assert.equal(b.host.last("re6stnet1")?.remote.proto, "tcp");
  b.host.last("re6stnet1")!.exit();
  await b.manager.tick();
  assert.equal(b.manager.clients.get(P(4)), undefined);
  assert.equal(b.host.processes.length, 2);
  assert.equal(b.cache.peerAddress(P(4)), null, "blacklisted until its address is refreshed");
  b.cache.addPeer(P(4), addr(4));
  assert.equal(b.cache.peerAddress(P(4)), addr(4), "a new address list makes it usable");
});

Deno.test("success on a later address moves it to the front in the cache", async () => {
  const b = managerBench({ settings: { disabledProtos: [] } });
  b.cache.addPeer(P(4), addr(4));
  await b.manager.makeTunnel(P(4), addr(4));
  b.host.last("re6stnet1")!.exit();
  b.manager.nextRefresh = Infinity;
  await b.manager.tick();
  await b.manager.routeUp(routeUp(b, P(4), "re6stnet1"));
  assert.equal(b.cache.peerAddress(P(4)), "10.0.0.4,1194,tcp;10.0.0.4,1194,udp");
});

Deno.test("a route-up older than the current OpenVPN process is ignored", async () => {
  const b = managerBench();
  await b.manager.makeTunnel(P(4), addr(4));
  await b.manager.routeUp(routeUp(b, P(4), "re6stnet1", { time: 1000 }));
  assert.equal(b.manager.clients.get(P(4))?.established, false);
});

Deno.test("a learned external address updates our address list", async () => {
  const b = managerBench({ ips: [] });
  await b.manager.makeTunnel(P(4), addr(4));
  await b.manager.routeUp(routeUp(b, P(4), "re6stnet1", { externalIp: "192.0.2.7" }));
  assert.deepEqual(b.ownChanges, ["192.0.2.7,1194,tcp"]);
});

Deno.test("--remote-gateway routes each IPv4 remote and removes the route with the tunnel", async () => {
  const b = managerBench({ remoteGateways: ["10.9.9.9"] });
  await b.manager.makeTunnel(P(4), addr(4));
  assert.deepEqual(b.host.ip, ["ip -4 route add 10.0.0.4/32 via 10.9.9.9"]);
  b.host.last("re6stnet1")!.exit();
  b.manager.nextRefresh = Infinity;
  await b.manager.tick();
  assert.deepEqual(b.host.ip.slice(1), ["ip -4 route del 10.0.0.4/32 via 10.9.9.9"]);
});

Deno.test("a --remote-gateway route that cannot be removed is logged, and removed at the next try", async () => {
  const b = managerBench({ remoteGateways: ["10.9.9.9"] });
  await b.manager.makeTunnel(P(4), addr(4));
  b.host.failKernel = "RTNETLINK answers: Operation not permitted";
  await b.manager.stop();
  assert.ok(
    b.log.lines.some((l) =>
      /WARNING Cannot update the kernel after closing the tunnel to 4\/16 \(re6stnet1\): RTNETLINK answers: Operation not permitted; the node's teardown tries again/
        .test(l)
    ),
    b.log.lines.join("\n"),
  );
  assert.deepEqual(b.host.ip.slice(1), ["ip -4 route del 10.0.0.4/32 via 10.9.9.9"], "tried again");
});

Deno.test("an island bootstraps towards a node it does not know", async () => {
  const b = managerBench({
    settings: { clientCount: 2 },
    bootstrap: () => Promise.resolve({ prefix: P(12), addresses: addr(12) }),
  });
  b.babel.snap = snapshot([{ prefix: P(3), iface: "re6stnet-tcp", behind: [P(5)] }]);
  b.serve(P(3), "re6stnet-tcp", 1n);
  await b.manager.tick();
  assert.equal(b.bootstrapCalls.length, 1);
  assert.ok(b.manager.clients.has(P(12)));
  await b.manager.tick();
  assert.equal(b.bootstrapCalls.length, 1, "back-off: no second call");
});

Deno.test("when the registry does not answer, an island keeps using its distant peers", async () => {
  const b = managerBench({ bootstrap: () => Promise.reject(new Error("timeout")) });
  b.babel.snap = snapshot([{ prefix: P(3), iface: "re6stnet-tcp", behind: [P(5)] }]);
  b.cache.addPeer(P(5), addr(5));
  await b.manager.tick();
  assert.ok(b.manager.clients.has(P(5)));
});

Deno.test("clients of our servers are asked their address list once, cached, no tunnel opened", async () => {
  const b = managerBench();
  b.cache.addPeer(P(1), addr(1));
  b.babel.snap = snapshot([
    { prefix: P(1), iface: "re6stnet1" },
    { prefix: P(3), iface: "re6stnet-tcp", ll: "fe80::3" },
    { prefix: P(6), iface: "re6stnet-tcp", ll: "fe80::6" },
  ]);
  b.connect(connect(P(3)));
  b.connect(connect(P(6)));
  b.peers.connected = new Set([P(1), P(3)]);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(1), [P(3)], "P(1) is cached; P(6) has no session yet");
  await b.manager.onAddress(P(3), addr(3));
  assert.equal(b.cache.peerAddress(P(3)), addr(3));
  assert.equal(b.manager.clients.has(P(3)), false, "the answer opens no tunnel");
  b.peers.connected.add(P(6));
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(1), [P(3), P(6)], "P(3) not asked again; P(6) now asked");
  await b.manager.tick();
  assert.equal(b.peers.codes(1).length, 2, "no answer yet: not asked at every tick");
  await b.clock.advance(b.settings.tunnelRefreshS * 1000);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(1).slice(2), [P(6)], "asked again after a tunnel_refresh");
});

Deno.test("restarted and cut off from the registry node, a node reconnects to a former client", async () => {
  const b = managerBench({ bootstrap: () => Promise.reject(new Error("registry unreachable")) });
  // Connected: its only client tunnel goes to the registry node P(1); P(3) is served.
  b.cache.addPeer(P(1), addr(1));
  b.babel.snap = snapshot([
    { prefix: P(1), iface: "re6stnet1" },
    { prefix: P(3), iface: "re6stnet-tcp", ll: "fe80::3" },
  ]);
  b.connect(connect(P(3)));
  b.peers.connected = new Set([P(1), P(3)]);
  await b.manager.tick();
  for (const p of b.peers.codes(1)) await b.manager.onAddress(p, addr(parseInt(p, 2)));
  // After a crash and restart with P(1) behind a cut: no route, P(1) failed.
  const again = managerBench({ bootstrap: () => Promise.reject(new Error("unreachable")) });
  for (const { prefix, address } of b.cache.peers()) again.cache.addPeer(prefix, address);
  again.cache.setTry(P(1), 1);
  await again.manager.tick();
  assert.equal(again.host.last("re6stnet1")?.remote.ip, "10.0.0.3");
  assert.equal(again.bootstrapCalls.length, 0);
});

Deno.test("a full node caches twice client_count peers, asking distant nodes (code 1) without opening tunnels", async () => {
  const b = managerBench({ settings: { clientCount: 1 } });
  b.cache.addPeer(P(1), addr(1));
  await b.manager.tick();
  await b.manager.routeUp(routeUp(b, P(1), "re6stnet1"));
  assert.equal(b.manager.clients.size, 1, "full: no tunnel is opened any more");
  // A cached peer whose tunnel failed does not count in the reserve.
  b.cache.addPeer(P(3), addr(3));
  b.cache.setTry(P(3), 1);
  b.babel.snap = snapshot([{ prefix: P(1), iface: "re6stnet1", behind: [P(5), P(6), P(7)] }]);
  await b.manager.tick();
  assert.deepEqual(b.peers.codes(1), [], "no session yet: only hello0s went out");
  b.peers.connected = new Set([P(5), P(6), P(7)]);
  await b.manager.tick();
  const asked = b.peers.codes(1);
  assert.equal(asked.length, 1, "one more usable peer makes 2 × client_count");
  assert.ok(asked[0] !== P(1));
  await b.manager.tick();
  assert.equal(b.peers.codes(1).length, 1, "not asked again while the answer is on its way");
  await b.manager.onAddress(asked[0], addr(parseInt(asked[0], 2)));
  assert.equal(b.cache.peerAddress(asked[0]), addr(parseInt(asked[0], 2)));
  assert.equal(b.manager.clients.size, 1, "the answer opens no tunnel");
  await b.clock.advance(b.settings.tunnelRefreshS * 1000);
  await b.manager.tick();
  assert.equal(b.peers.codes(1).length, 1, "the reserve is full: nobody else is asked");
});

Deno.test("topology lists client tunnels first, then served clients", async () => {
  const b = managerBench();
  await b.manager.makeTunnel(P(4), addr(4));
  b.connect(connect(P(6)));
  assert.equal(b.manager.topology(), "1 4/16 6/16");
});

Deno.test("the registry node with distant nodes does not think it is cut off", async () => {
  const b = managerBench({ prefix: P(1), bootstrap: () => Promise.reject(new Error("no")) });
  b.babel.snap = snapshot([{ prefix: P(3), iface: "re6stnet-tcp", behind: [P(5)] }]);
  b.serve(P(3), "re6stnet-tcp", 1n);
  b.cache.addPeer(P(5), addr(5));
  await b.manager.tick();
  assert.equal(b.manager.bootstrap.backingOff, false);
  assert.ok(b.manager.clients.has(P(5)));
  assert.equal(b.bootstrapCalls.length, 0);
});

Deno.test("a bootstrap peer that refuses us is asked again at the tick pace, not in a loop", async () => {
  const b = managerBench({
    bootstrap: () => Promise.resolve({ prefix: P(1), addresses: addr(1) }),
  });
  const end = new AbortController();
  const loop = b.manager.run(end.signal);
  for (let i = 0; i < 20; i++) {
    await b.clock.advance(0);
    b.host.processes.at(-1)?.exit(); // connection refused at once
  }
  await b.clock.advance(0);
  assert.equal(b.bootstrapCalls.length, 1);
  await b.clock.advance(5_000);
  b.host.processes.at(-1)?.exit();
  await b.clock.advance(5_000);
  assert.ok(b.bootstrapCalls.length <= 3, `${b.bootstrapCalls.length} calls in 10 s`);
  end.abort();
  await loop;
});

Deno.test("a tap is announced to babeld once, never flushed, and reused", async () => {
  const b = managerBench();
  await b.manager.makeTunnel(P(4), addr(4));
  b.host.last("re6stnet1")!.exit();
  b.manager.nextRefresh = Infinity;
  await b.manager.tick();
  await b.manager.makeTunnel(P(5), addr(5));
  assert.deepEqual(b.babel.commands, ["interface re6stnet1 type tunnel"]);
  assert.equal(b.host.last("re6stnet1")?.remote.ip, "10.0.0.5", "the tap is reused");
  await b.manager.stop();
  assert.equal(b.babel.commands.length, 1);
});

Deno.test("stop closes every tunnel at once, even while a tick waits for the registry", async () => {
  let answer!: (bp: { prefix: string; addresses: string }) => void;
  const b = managerBench({ bootstrap: () => new Promise((r) => answer = r) });
  b.cache.addPeer(P(4), addr(4));
  b.babel.snap = snapshot([{ prefix: P(3), iface: "re6stnet-tcp", behind: [P(5)] }]);
  b.serve(P(3), "re6stnet-tcp", 1n);
  await b.manager.makeTunnel(P(4), addr(4));
  const tick = b.manager.tick(); // an island: waits for getBootstrapPeer
  await b.clock.advance(0);
  const stopping = b.manager.stop();
  await b.clock.advance(0);
  assert.ok(b.host.last("re6stnet1")!.stopped, "closed without waiting for the tick");
  answer({ prefix: P(12), addresses: addr(12) });
  await tick;
  await stopping;
  assert.equal(b.manager.clients.size, 0, "nothing opened after stop");
});

Deno.test("a registry that keeps offering a peer whose tunnel failed is asked less and less often", async () => {
  let offer = P(1);
  const b = managerBench({
    bootstrap: () => Promise.resolve({ prefix: offer, addresses: addr(1) }),
  });
  const end = new AbortController();
  const loop = b.manager.run(end.signal);
  // P(1) is full: each tunnel to it ends at once.
  for (let s = 0; s < 120; s++) {
    await b.clock.advance(1000);
    const p = b.host.processes.at(-1);
    if (p && !p.done) p.exit();
  }
  const gaps = b.bootstrapCalls.slice(1).map((t, i) => (t - b.bootstrapCalls[i]) / 1000);
  assert.ok(gaps.length >= 3, `asked again: ${gaps}`);
  assert.ok(gaps.slice(1).every((g, i) => g >= gaps[i]), `the gaps grow: ${gaps}`);
  assert.ok(gaps.at(-1)! >= 40, `backed off to at least 40 s: ${gaps}`);
  assert.ok(b.log.lines.some((l) => /offered 1\/16 again, whose tunnel failed us/.test(l)));
  // Another peer is taken as soon as the registry offers one.
  offer = P(2);
  const before = b.host.processes.length;
  await b.clock.advance(130_000);
  assert.ok(
    b.host.processes.slice(before).some((p) => p.remote.ip === "10.0.0.1" && p.iface),
    "a tunnel was started",
  );
  assert.ok(b.log.lines.some((l) => l.includes("Bootstrap peer from the registry: 2/16")));
  end.abort();
  await loop;
});
