// The node with its tunnels on fake parts: what runs in which mode, and how the failures of
// the overlay (peer socket, hooks, tunnel manager) reach the node.
import assert from "node:assert/strict";
import { Node, type NodeExit } from "../../core/node/node.ts";
import type { BabelSnapshot } from "../../core/babel/view.ts";
import { type NodeCache, openCache } from "../../core/node/cache.ts";
import {
  fakeRegistry,
  type FakeWorld,
  fakeWorld,
  networkConfigBody,
  nodeCertPem,
  nodeKeyPem,
  nodeOptions,
  TEST_CA_CERT_PEM,
  TEST_DH_PEM as DH,
  TEST_NODE_ARGS as BASE,
} from "../helpers/node_fixtures.ts";
import { P, snapshot } from "../helpers/tunnel_fakes.ts";
import { settled } from "../helpers/wait.ts";

/** Lets the node's promise chains run until `cond` holds (no time passes). */
const until = settled;

interface Bench {
  w: FakeWorld;
  node: Node;
  run: Promise<NodeExit>;
}

/** A node with the overlay, started with `args`; babeld shows `snapshot`. */
async function startOverlayNode(
  args: string[] = [],
  o: { snapshot?: BabelSnapshot; cache?: (c: NodeCache) => NodeCache } = {},
): Promise<Bench> {
  const key = await nodeKeyPem();
  const cert = nodeCertPem(key);
  const body = networkConfigBody(cert);
  const registry = fakeRegistry({
    getNetworkConfig: () => Promise.resolve(body),
    getDh: () => Promise.resolve(DH),
  });
  const w = fakeWorld({
    files: { "/c/ca.crt": TEST_CA_CERT_PEM, "/c/cert.crt": cert, "/c/cert.key": key },
    registry,
    snapshot: o.snapshot,
  });
  const opts = nodeOptions([...BASE, ...args]);
  if (o.cache) {
    const cache = o.cache(openCache(w.db));
    w.parts.openCache = () => cache;
  }
  const node = new Node(opts, w.parts);
  const run = node.run();
  run.catch(() => {});
  await until(() => node.state !== "starting", "the node left start-up");
  assert.equal(node.state, "running");
  return { w, node, run };
}

Deno.test("a failed receive on the peer socket shows in the node's recent errors", async () => {
  const { w, node, run } = await startOverlayNode();
  assert.equal(w.sockets.length, 1);
  w.sockets[0].onError(
    new Error("UDP receive on [::]:326 failed: No buffer space available; receiving again"),
  );
  assert.ok(
    node.status().errors.some((e) =>
      /^warning: Peer protocol socket: UDP receive on \[::\]:326 failed: No buffer space/
        .test(e.message)
    ),
    JSON.stringify(node.status().errors),
  );
  node.stop();
  await run;
  assert.ok(w.sockets[0].closed);
});

Deno.test("a route-up the tunnel manager fails on is logged, not an unhandled rejection", async () => {
  let failing = false;
  const { w, node, run } = await startOverlayNode([], {
    // The registry (0/16) is a neighbour; 5/16, behind it, is a distant node with a cached
    // address: the overlay opens a client tunnel to it.
    snapshot: snapshot([{ prefix: P(0), iface: "eth0", behind: [P(5)] }]),
    cache: (c) => {
      c.addPeer(P(5), "10.0.0.5,1194,tcp");
      return {
        ...c,
        setTry(p, t) {
          if (failing) throw new Error("disk I/O error");
          c.setTry(p, t);
        },
      };
    },
  });
  await until(
    () => node.status().tunnels.some((t) => t.direction === "client" && t.peer === "5/16"),
    "a client tunnel to 5/16",
  );
  const iface = node.status().tunnels.find((t) => t.peer === "5/16")!.interface;
  failing = true;
  await w.hookHandler!({
    type: "route-up",
    dev: iface,
    commonName: "5/16",
    serial: 99n,
    time: Math.floor(w.clock.now() / 1000),
  });
  await until(
    () => w.log.lines.some((l) => l.includes(`Cannot handle route-up of ${iface} (5/16)`)),
    "the failure logged",
  );
  assert.ok(
    w.log.lines.some((l) => /ERROR Cannot handle route-up .*disk I\/O error/.test(l)),
  );
  failing = false;
  node.stop();
  await run;
});

Deno.test("--client mode answers the peer protocol and opens no tunnel besides its client", async () => {
  const { w, node, run } = await startOverlayNode(["--client", "192.0.2.1,1194,tcp"], {
    // A distant node with a cached address: a node not in --client mode would open a tunnel.
    snapshot: snapshot([{ prefix: P(0), iface: "re6stnet", behind: [P(5)] }]),
    cache: (c) => {
      c.addPeer(P(5), "10.0.0.5,1194,tcp");
      return c;
    },
  });
  assert.equal(w.sockets.length, 1, "UDP 326 is bound");
  assert.ok(w.log.lines.some((l) => /Overlay started in --client mode/.test(l)));
  await w.clock.advance(10_000); // a couple of tunnel manager ticks
  assert.deepEqual(
    node.status().tunnels.map((t) => [t.direction, t.interface]),
    [["client", "re6stnet"]],
    "only the --client tunnel",
  );
  assert.deepEqual(w.processes.map((p) => p.name), ["babeld", "openvpn re6stnet"]);
  assert.ok(
    !w.kernel.ops.some((l) => l.startsWith("nft add")),
    "nothing drained without client tunnels",
  );
  node.stop();
  await run;
  assert.ok(w.sockets[0].closed, "the peer socket is closed at exit");
  assert.deepEqual(w.kernel.state(), ["link lo other up mtu 65536"]);
});

Deno.test("--remote-gateway routes go through the node's journal and are gone after teardown", async () => {
  const { w, node, run } = await startOverlayNode(["--remote-gateway", "10.9.9.9"], {
    snapshot: snapshot([{ prefix: P(0), iface: "eth0", behind: [P(5)] }]),
    cache: (c) => {
      c.addPeer(P(5), "10.0.0.5,1194,tcp");
      return c;
    },
  });
  await until(
    () => node.status().tunnels.some((t) => t.direction === "client" && t.peer === "5/16"),
    "a client tunnel to 5/16",
  );
  assert.ok(w.kernel.ops.includes("ip -4 route add 10.0.0.5/32 via 10.9.9.9"));
  assert.ok(
    w.kernel.changes().some((c) => c.kind === "route" && c.spec.dst === "10.0.0.5/32"),
    "journaled (a kill -9 leaves it to the next start)",
  );
  node.stop();
  await run;
  assert.ok(w.kernel.ops.includes("ip -4 route del 10.0.0.5/32 via 10.9.9.9"));
  assert.deepEqual(w.kernel.state().filter((l) => l.startsWith("route")), []);
});
