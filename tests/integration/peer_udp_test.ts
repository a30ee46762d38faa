// Two nodes and a registry talking the peer protocol over real UDP sockets on loopback.
//
// Nodes need source addresses inside the network, which loopback offers without root in the
// IPv4-mapped range: the test network is ::ffff:127.0.0.0/104, so node prefix 00000000 has the
// node IP ::ffff:127.0.0.1 and 00000001 has ::ffff:127.1.0.1. Ports are ephemeral.

import assert from "node:assert/strict";
import { platformString, SOFTWARE_VERSION } from "../../core/constants.ts";
import { bitsFromIp, nodeIp } from "../../core/addressing.ts";
import type { Bits } from "../../core/addressing.ts";
import { systemClock } from "../../core/clock.ts";
import { memoryLogger } from "../../core/log.ts";
import { encodeRelay } from "../../core/peer/frame.ts";
import { PeerProtocol } from "../../core/peer/protocol.ts";
import { Relay } from "../../core/registry/relay.ts";
import { openUdpSocket } from "../../platform/udp.ts";
import type { UdpSocket } from "../../platform/udp.ts";
import { testCa } from "../helpers/peer_lab.ts";
import { waitFor } from "../helpers/wait.ts";

const NETWORK = bitsFromIp("::ffff:127.0.0.0").slice(0, 104);
const R = "00000000";
const A = "00000001";

function until(cond: () => boolean, what: string): Promise<boolean> {
  return waitFor(cond, { what, intervalMs: 10 });
}

/** Receives one datagram on a raw socket, or fails after `ms`. */
async function receiveOne(conn: Deno.DatagramConn, ms = 5000): Promise<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no relay answer within ${ms} ms`)), ms);
  });
  try {
    const [data] = await Promise.race([conn.receive(), timeout]);
    return data;
  } finally {
    clearTimeout(timer);
  }
}

interface UdpLab {
  nodes: PeerProtocol[];
  ports: Map<Bits, number>;
  events: string[];
  close(): Promise<void>;
}

/** The registry node r (prefix 00000000, on [::]) and node a (00000001, on its own address). */
async function udpLab(): Promise<UdpLab> {
  const ca = await testCa(NETWORK, 2);
  const ids = [ca.issue(R), ca.issue(A)];
  const clock = systemClock;
  const ports = new Map<Bits, number>();
  const sockets: UdpSocket[] = [];
  const events: string[] = [];
  const nodes = ids.map((id, i) => {
    const socketRef: { s?: UdpSocket } = {};
    const proto = new PeerProtocol({
      network: NETWORK,
      prefix: id.prefix,
      cert: id.cert.der,
      key: id.key,
      ca: ca.cert,
      isRevoked: () => false,
      version: ca.version(i === 0 ? 2 : 1),
      send: (host, port, bytes) => socketRef.s!.send(host, port, bytes),
      clock,
      log: memoryLogger(),
      registryPrefix: () => R,
      peerEndpoint: (p) => ({ host: nodeIp(NETWORK, p), port: ports.get(p)! }),
      handlers: {
        addressList: () => (i === 1 ? "192.0.2.1,1194,tcp" : ""),
        onRegistryVersion: () => events.push(`${id.prefix} registry version`),
      },
    });
    // The registry node listens on all addresses (it must see ::1); the other on its own.
    const s = openUdpSocket({
      hostname: i === 0 ? "::" : nodeIp(NETWORK, id.prefix),
      port: 0,
      onDatagram: (host, port, bytes) => proto.receive(host, port, bytes),
    });
    socketRef.s = s;
    sockets.push(s);
    ports.set(id.prefix, s.port);
    return proto;
  });
  return {
    nodes,
    ports,
    events,
    close: async () => {
      for (const s of sockets) await s.close();
    },
  };
}

Deno.test("two nodes handshake over UDP and relay a registry request through ::1", async () => {
  assert.equal(nodeIp(NETWORK, A), "::ffff:127.1.0.1");
  const lab = await udpLab();
  const registry = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
  try {
    const [r, a] = lab.nodes;
    a.probe(R);
    await until(() => a.isConnected(R) && r.isConnected(A), "a session between r and a");
    await until(() => a.version?.[0] === 2, "a to adopt r's newer version");

    const request = encodeRelay(A, 1);
    await registry.send(request, { transport: "udp", hostname: "::1", port: lab.ports.get(R)! });
    const answer = await receiveOne(registry);
    assert.deepEqual(answer, encodeRelay(A, 1, new TextEncoder().encode("192.0.2.1,1194,tcp")));
  } finally {
    registry.close();
    await lab.close();
  }
});

Deno.test("the registry's Relay queries a node through its registry node", async () => {
  const lab = await udpLab();
  const socket = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
  const relay = new Relay(socket, memoryLogger(), { port: lab.ports.get(R)!, timeoutMs: 3000 });
  try {
    const [r, a] = lab.nodes;
    a.probe(R);
    await until(() => a.isConnected(R) && r.isConnected(A), "a session between r and a");
    const list = await relay.query(A, 1);
    assert.equal(list && new TextDecoder().decode(list), "192.0.2.1,1194,tcp");
    const info = await relay.query(A, 4);
    // This implementation's version and platform (what `versions` reports), never "unknown".
    assert.equal(
      info && new TextDecoder().decode(info),
      `${SOFTWARE_VERSION}, ${platformString()}`,
    );
    assert.match(platformString(), /^Linux-(x86_64|aarch64)$/);
    await relay.notifyNewVersion(R);
    await until(() => lab.events.length > 0, "the registry node to hear of the new version");
    assert.deepEqual(lab.events, [`${R} registry version`]);
  } finally {
    await relay.close();
    await lab.close();
  }
});

Deno.test("a closed UDP socket stops its loop and refuses to send", async () => {
  const got: string[] = [];
  const s = openUdpSocket({
    hostname: "::1",
    port: 0,
    onDatagram: (host) => {
      got.push(host);
    },
  });
  await s.send("::1", s.port, Uint8Array.of(1, 2, 3));
  await until(() => got.length === 1, "the datagram sent to ourselves");
  assert.deepEqual(got, ["::1"]);
  await s.close();
  await assert.rejects(() => s.send("::1", s.port, Uint8Array.of(1)), /closed/);
});
