// The node runtime with its overlay (core/node/overlay.ts) on fake parts: what runs in which
// mode, and how the overlay's failures reach the node.
import assert from "node:assert/strict";
import { Node, type NodeExit } from "../../core/node/daemon.ts";
import { overlayTunnels } from "../../core/node/overlay.ts";
import {
  type FakeOverlayParts,
  fakeOverlayParts,
  fakeRegistry,
  type FakeWorld,
  fakeWorld,
  networkConfigBody,
  nodeCertPem,
  nodeKeyPem,
  nodeOptions,
  TEST_CA_CERT_PEM,
} from "../helpers/node_fixtures.ts";

const DH = "-----BEGIN DH PARAMETERS-----\nMIIB\n-----END DH PARAMETERS-----\n";
const BASE = [
  "--registry",
  "http://reg/",
  "--ca",
  "/c/ca.crt",
  "--cert",
  "/c/cert.crt",
  "--key",
  "/c/cert.key",
  "-s",
  "/st",
  "-l",
  "/lg",
  "-r",
  "/run",
];

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 0));
  }
  throw new Error(`never happened: ${what}`);
}

interface Bench {
  w: FakeWorld;
  overlay: FakeOverlayParts;
  node: Node;
  run: Promise<NodeExit>;
}

/** A node with the overlay, started with `args`. */
async function startOverlayNode(args: string[] = []): Promise<Bench> {
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
  });
  const opts = nodeOptions([...BASE, ...args]);
  const overlay = fakeOverlayParts(registry);
  w.parts.tunnels = overlayTunnels(opts, overlay);
  const node = new Node(opts, w.parts);
  const run = node.run();
  run.catch(() => {});
  await until(() => node.status().state !== "starting", "the node left start-up");
  assert.equal(node.status().state, "running");
  return { w, overlay, node, run };
}

Deno.test("a failed receive on the peer socket shows in the node's recent errors", async () => {
  const { overlay, node, run } = await startOverlayNode();
  assert.equal(overlay.sockets.length, 1);
  overlay.sockets[0].onError(
    new Error("UDP receive on [::]:326 failed: No buffer space available; receiving again"),
  );
  assert.ok(
    node.status().errors.some((e) =>
      e.level === "warning" &&
      /^overlay: Peer protocol socket: UDP receive on \[::\]:326 failed: No buffer space/
        .test(e.message)
    ),
    JSON.stringify(node.status().errors),
  );
  node.stop();
  await run;
  assert.ok(overlay.sockets[0].closed);
});
