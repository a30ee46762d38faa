import assert from "node:assert/strict";
import { SOFTWARE_VERSION, softwareInfo } from "../../core/constants.ts";
import { memoryLogger } from "../../core/log.ts";
import { encodeRelay } from "../../core/peer/frame.ts";
import { handleMessage, type MessageContext } from "../../core/peer/messages.ts";
import { makeLab, seqOf } from "../helpers/peer_lab.ts";
import type { Lab } from "../helpers/peer_lab.ts";

const R = "0000000000000000"; // the registry node
const A = "0000000000000001";
const B = "0000000000000010";
const text = (s: string) => new TextEncoder().encode(s);
const untext = (b: Uint8Array) => new TextDecoder().decode(b);

/** Handshakes node i with node j and clears the records. */
async function connect(lab: Lab, i = 0, j = 1): Promise<void> {
  const [x, y] = [lab.nodes[i], lab.nodes[j]];
  x.proto.probe(y.id.prefix);
  await lab.net.flush();
  assert.ok(x.proto.isConnected(y.id.prefix) && y.proto.isConnected(x.id.prefix));
  lab.net.delivered = [];
}

/** A registry on ::1 port 5000 recording what its node sends back. */
function attachRegistry(lab: Lab): Uint8Array[] {
  const got: Uint8Array[] = [];
  lab.net.attach("::1", (_h, _p, b) => {
    got.push(b);
    return Promise.resolve();
  });
  return got;
}

function fromRegistry(lab: Lab, node: number, bytes: Uint8Array): void {
  lab.net.inject({
    fromHost: "::1",
    fromPort: 5000,
    toHost: lab.nodes[node].ip,
    toPort: 326,
    bytes,
  });
}

Deno.test("an address request is answered with the address list, countries kept", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  await connect(lab);
  a.addresses = "10.0.0.1,1194,tcp,FR;2001:db8::1,1194,tcp6,FR";
  assert.equal(b.proto.sendTo(A, 1), true);
  await lab.net.flush();
  assert.deepEqual(b.events, [`address ${A} ${a.addresses}`]);
  assert.deepEqual(lab.net.delivered.map((d) => d.bytes.length), [25, 25 + a.addresses.length, 24]);
});

Deno.test("a peer below protocol 7 gets the address list without countries", async () => {
  const lab = await makeLab([A, B], (i) => (i === 1 ? { protocol: 6 } : {}));
  const [a, b] = lab.nodes;
  await connect(lab);
  a.addresses = "10.0.0.1,1194,tcp,FR";
  b.proto.sendTo(A, 1);
  await lab.net.flush();
  assert.deepEqual(b.events, [`address ${A} 10.0.0.1,1194,tcp`]);
});

Deno.test("an empty address list gives an empty reply, not an answer", async () => {
  const lab = await makeLab([A, B]);
  const [, b] = lab.nodes;
  await connect(lab);
  b.proto.sendTo(A, 1);
  await lab.net.flush();
  assert.deepEqual(b.events, []);
  assert.deepEqual(lab.net.delivered.map((d) => d.bytes.length), [25, 24]);
});

Deno.test("the registry's request travels through its node with the forward flag and back", async () => {
  const lab = await makeLab([R, A], () => ({ registryPrefix: () => R }));
  const [r, a] = lab.nodes;
  const registry = attachRegistry(lab);
  await connect(lab);
  a.addresses = "10.0.0.1,1194,udp;10.0.0.1,1194,tcp";
  fromRegistry(lab, 0, encodeRelay(A, 1)); // VECTORS §6
  await lab.net.flush();
  // node r → a: 0x81 with no data; a → r: 0x81 ‖ list; r → a: empty ack.
  const payloads = lab.net.delivered
    .filter((d) => d.fromHost !== "::1" && d.toHost !== "::1")
    .map((d) => d.bytes.subarray(4, -20));
  assert.equal(payloads.length, 3);
  assert.deepEqual(payloads[0], Uint8Array.of(0x81));
  assert.deepEqual(payloads[1], new Uint8Array([0x81, ...text(a.addresses)]));
  assert.deepEqual(payloads[2], new Uint8Array(0));
  assert.deepEqual(registry, [encodeRelay(A, 1, text(a.addresses))]);
  assert.deepEqual(r.events, [], "a forwarded answer is not a local address answer");
});

Deno.test("forwarded topology requests are answered to the registry node only", async () => {
  const lab = await makeLab([R, A, B], () => ({ registryPrefix: () => R }));
  const [, a, b] = lab.nodes;
  const registry = attachRegistry(lab);
  await connect(lab, 0, 1);
  fromRegistry(lab, 0, encodeRelay(A, 5));
  await lab.net.flush();
  assert.deepEqual(registry.map(untext), [`${A}\x00\x051 0000000000000010`]);
  // The same request from an ordinary peer is not answered.
  await connect(lab, 2, 1);
  b.proto.sendTo(A, 5);
  await lab.net.flush();
  assert.deepEqual(lab.net.delivered.map((d) => d.bytes.length), [25, 24]);
  assert.ok(a.log.lines.some((l) => l.includes("not the registry node")));
});

Deno.test("relay requests for the node itself are answered locally", async () => {
  const lab = await makeLab([R], () => ({ registryPrefix: () => R }));
  const [r] = lab.nodes;
  const registry = attachRegistry(lab);
  r.addresses = "10.0.0.1,1194,tcp,FR";
  fromRegistry(lab, 0, encodeRelay(R, 1));
  fromRegistry(lab, 0, encodeRelay(R, 4));
  fromRegistry(lab, 0, encodeRelay(R, 5));
  fromRegistry(lab, 0, encodeRelay(R, 0));
  fromRegistry(lab, 0, text("junk"));
  await lab.net.flush();
  assert.deepEqual(registry.map(untext), [
    `${R}\x00\x0110.0.0.1,1194,tcp,FR`,
    `${R}\x00\x040.1.0, test`,
    `${R}\x00\x051 0000000000000010`,
  ]);
  assert.deepEqual(r.events, ["registry version"]);
});

Deno.test("a relay request for an unconnected peer only starts a handshake", async () => {
  const lab = await makeLab([R, A]);
  const registry = attachRegistry(lab);
  lab.net.filter = (d) => d.fromHost !== lab.nodes[1].ip; // a never answers
  fromRegistry(lab, 0, encodeRelay(A, 1));
  await lab.net.flush();
  assert.deepEqual(lab.net.delivered.slice(1).map((d) => seqOf(d.bytes)), [0]);
  assert.deepEqual(registry, []);
});

Deno.test("a newer version from a peer is adopted and reported", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  a.proto.setVersion(lab.ca.version(1));
  b.proto.setVersion(lab.ca.version(2));
  await connect(lab); // b sends its version right after accepting a's secret
  assert.deepEqual(a.proto.version, lab.ca.version(2));
  assert.deepEqual(a.events, [`newer 2 ${B}`]);
  assert.deepEqual(b.events, []);
});

Deno.test("an older version from a peer is answered with ours", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  a.proto.setVersion(lab.ca.version(2));
  b.proto.setVersion(lab.ca.version(1));
  await connect(lab);
  assert.deepEqual(b.proto.version, lab.ca.version(2));
  assert.deepEqual(b.events, [`newer 2 ${A}`]);
  assert.deepEqual(a.events, []);
});

Deno.test("an invalid version blob is ignored", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  a.proto.setVersion(lab.ca.version(1));
  b.proto.setVersion(lab.ca.version(1));
  await connect(lab);
  const forged = lab.ca.version(3);
  forged[forged.length - 1] ^= 1;
  a.proto.sendTo(B, 0, forged);
  a.proto.sendTo(B, 0, Uint8Array.of(0x21)); // truncated
  await lab.net.flush();
  assert.deepEqual(b.proto.version, lab.ca.version(1));
  assert.deepEqual(b.events, []);
  assert.ok(b.log.lines.some((l) => l.includes("invalid network version")));
});

Deno.test("a new version is gossiped to peers that have an older one", async () => {
  const lab = await makeLab([A, B, "0000000000000011"]);
  const [a, b, c] = lab.nodes;
  for (const n of lab.nodes) n.proto.setVersion(lab.ca.version(1));
  await connect(lab, 0, 1);
  a.proto.setVersion(lab.ca.version(5));
  a.proto.gossipVersion([B, c.id.prefix]);
  await lab.net.flush(); // b gets it; c only gets a hello0 and then the version after its session
  assert.deepEqual(b.proto.version, lab.ca.version(5));
  assert.deepEqual(c.proto.version, lab.ca.version(5), "the session with c carried it");
  lab.net.delivered = [];
  a.proto.gossipVersion([B]);
  await lab.net.flush();
  assert.deepEqual(lab.net.delivered, [], "b is known to be up to date");
});

Deno.test("code 7 is logged by the registry node only", async () => {
  const lab = await makeLab([R, A], () => ({ registryPrefix: () => R }));
  const [r, a] = lab.nodes;
  await connect(lab);
  a.proto.sendTo(R, 7, text("routing cache problem"));
  r.proto.sendTo(A, 7, text("ignored"));
  await lab.net.flush();
  assert.ok(r.log.lines.some((l) => l.endsWith("INFO 1/16: routing cache problem")));
  assert.ok(!a.log.lines.some((l) => l.includes("ignored")));
});

Deno.test("tunnel kill requests and responses reach the node", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  await connect(lab);
  a.proto.sendTo(B, 2);
  b.proto.sendTo(A, 3);
  await lab.net.flush();
  assert.deepEqual(b.events, [`kill request ${A}`]);
  assert.deepEqual(a.events, [`kill response ${B}`]);
});

Deno.test("code 4 answers this implementation's version and platform, never 'unknown'", () => {
  const ctx: MessageContext = {
    handlers: {},
    log: memoryLogger(),
    prefix: A,
    registryPrefix: () => R,
    getVersion: () => null,
    adoptVersion: () => {},
    verifyVersion: () => false,
  };
  const answer = untext(handleMessage(ctx, null, 4, new Uint8Array())!);
  assert.equal(
    answer,
    `${SOFTWARE_VERSION}, ${Deno.build.os === "linux" ? "Linux" : ""}-${Deno.build.arch}`,
  );
  assert.equal(answer, softwareInfo());
});
