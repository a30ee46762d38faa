import assert from "node:assert/strict";
import { nodeIp } from "../../core/addressing.ts";
import { sha1 } from "../../core/crypto.ts";
import { encodeHello0 } from "../../core/peer/frame.ts";
import { makeLab, makeNode, seqOf } from "../helpers/peer_lab.ts";
import type { Datagram, Lab } from "../helpers/peer_lab.ts";

const A = "0000000000000001";
const B = "0000000000000010";

/** Sequence numbers and sizes of what was delivered, as "from>to:seq/len". */
function trace(lab: Lab, list: Datagram[] = lab.net.delivered): string[] {
  const name = (ip: string) => lab.nodes.find((n) => n.ip === ip)?.id.prefix.slice(-2) ?? ip;
  return list.map((d) =>
    `${name(d.fromHost)}>${name(d.toHost)}:${seqOf(d.bytes)}/${d.bytes.length}`
  );
}

/** Runs a full handshake between nodes 0 and 1 and clears the records. */
async function connect(lab: Lab): Promise<void> {
  const [a, b] = lab.nodes;
  a.proto.probe(b.id.prefix);
  await lab.net.flush();
  assert.ok(a.proto.isConnected(b.id.prefix) && b.proto.isConnected(a.id.prefix));
  lab.net.delivered = [];
}

Deno.test("two nodes that know nothing of each other handshake seq 0 → 1 → 2 → code 0", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  const v1 = lab.ca.version(1);
  a.proto.setVersion(v1);
  b.proto.setVersion(v1);
  assert.equal(a.proto.probe(B), false);
  await lab.net.flush();
  const der = a.id.cert.der.length, derB = b.id.cert.der.length;
  assert.deepEqual(trace(lab), [
    `01>10:0/${4 + der}`, // a does not know b's certificate
    `10>01:1/${4 + 1 + 20 + derB}`, // b answers with the hash of a's certificate
    `01>10:2/${4 + 1 + 128 + 128}`, // the hash matches: a starts the session
    `10>01:3/${4 + 1 + v1.length + 20}`, // b accepts and sends its version
    `01>10:3/24`, // same version: empty acknowledgement
  ]);
  assert.equal(a.proto.isConnected(B), true);
  assert.equal(b.proto.isConnected(A), true);
  assert.deepEqual(a.proto.peers().map((p) => [p.prefix, p.protocol, p.connected]), [
    [B, 10, true],
  ]);
  assert.equal(a.proto.peers()[0].protocol, 10, "a read b's protocol from its seq 1");
  assert.equal(b.proto.peers()[0].protocol, 10, "b read a's protocol from its seq 2");
  assert.deepEqual(a.events, [], "same version: nothing to fetch");
  // The first datagram is seq 0 ‖ DER of a's certificate, byte for byte.
  assert.deepEqual(lab.net.delivered[0].bytes, encodeHello0(a.id.cert.der));
  const h1 = lab.net.delivered[1].bytes;
  assert.equal(h1[4], 10);
  assert.deepEqual(h1.subarray(5, 25), sha1(a.id.cert.der));
});

Deno.test("a node that already knows the peer's certificate starts with seq 1", async () => {
  const lab = await makeLab([A, B]);
  const [a] = lab.nodes;
  await connect(lab);
  // Lose b's answers for 60 s: the session is considered dead.
  lab.net.filter = (d) => d.fromHost !== lab.nodes[1].ip;
  await lab.clock.advance(1 * 1000);
  assert.equal(a.proto.sendTo(B, 4), true);
  await lab.net.flush();
  await lab.clock.advance(60 * 1000);
  assert.equal(a.proto.isConnected(B), false);
  lab.net.filter = () => true;
  lab.net.delivered = [];
  assert.equal(a.proto.sendTo(B, 4), false, "not connected: the message is dropped");
  await lab.net.flush();
  assert.deepEqual(trace(lab).map((t) => t.split("/")[0]), ["01>10:1", "10>01:2", "01>10:3"]);
  assert.equal(a.proto.isConnected(B), true);
});

Deno.test("simultaneous seq 2: the later secret wins on both sides", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  await connect(lab);
  // Both sides lose the session (answers dropped for 60 s) and probe each other at once.
  lab.net.filter = () => false;
  a.proto.sendTo(B, 4);
  b.proto.sendTo(A, 4);
  await lab.net.flush();
  await lab.clock.advance(61 * 1000);
  assert.equal(a.proto.isConnected(B) || b.proto.isConnected(A), false);
  lab.net.filter = () => true;
  a.proto.probe(B);
  b.proto.probe(A);
  assert.deepEqual(lab.net.queue.map((d) => seqOf(d.bytes)), [1, 1]);
  // b answers a's seq 1 first, a answers b's one a second later: a's secret is the later one.
  await lab.net.step(); // b: seq 2 with its secret queued
  await lab.clock.advance(1 * 1000);
  await lab.net.step(); // a: seq 2 with its (later) secret queued
  assert.deepEqual(lab.net.queue.map((d) => seqOf(d.bytes)), [2, 2]);
  lab.net.delivered = [];
  await lab.net.flush(); // both seq 2 cross; then b confirms with a data message
  assert.ok(a.log.lines.some((l) => l.includes("not newer")), "a refused b's older secret");
  assert.ok(!b.log.lines.some((l) => l.includes("not newer")), "b accepted a's newer secret");
  assert.equal(a.proto.isConnected(B), true);
  assert.equal(b.proto.isConnected(A), true);
  // Both use the same (a's) secret: a request is answered.
  a.addresses = "10.0.0.1,1194,tcp";
  b.proto.sendTo(A, 1);
  await lab.net.flush();
  assert.deepEqual(b.events, [`address ${A} 10.0.0.1,1194,tcp`]);
});

Deno.test("replayed and reordered data messages are dropped", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  await connect(lab);
  lab.net.filter = () => false;
  a.proto.sendTo(B, 2);
  a.proto.sendTo(B, 2);
  await lab.net.flush();
  const [first, second] = lab.net.dropped.splice(0);
  assert.equal(seqOf(second.bytes), seqOf(first.bytes) + 1);
  lab.net.filter = () => true;
  lab.net.inject(second);
  await lab.net.flush();
  assert.deepEqual(b.events, [`kill request ${A}`]);
  lab.net.inject(first); // reordered
  lab.net.inject(second); // replayed
  await lab.net.flush();
  assert.deepEqual(b.events, [`kill request ${A}`]);
});

Deno.test("a data message with a wrong MAC or a tampered payload is dropped", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  await connect(lab);
  lab.net.filter = () => false;
  a.proto.sendTo(B, 3);
  await lab.net.flush();
  const [msg] = lab.net.dropped.splice(0);
  lab.net.filter = () => true;
  const badMac = msg.bytes.slice();
  badMac[badMac.length - 1] ^= 1;
  const badPayload = msg.bytes.slice();
  badPayload[4] ^= 1;
  lab.net.inject({ ...msg, bytes: badMac });
  lab.net.inject({ ...msg, bytes: badPayload });
  await lab.net.flush();
  assert.deepEqual(b.events, []);
  assert.equal(lab.net.delivered.length, 2, "no reply to invalid messages");
  lab.net.inject(msg);
  await lab.net.flush();
  assert.deepEqual(b.events, [`kill response ${A}`], "the genuine message still passes");
});

Deno.test("hello0 is sent to a peer at most once every 60 s", async () => {
  const lab = await makeLab([A, B]);
  const [a] = lab.nodes;
  lab.net.filter = () => false;
  const sent = async () => (await lab.net.flush(), lab.net.dropped.splice(0).length);
  a.proto.probe(B);
  assert.equal(await sent(), 1);
  await lab.clock.advance(30 * 1000);
  a.proto.probe(B);
  a.proto.sendTo(B, 1);
  assert.equal(await sent(), 0);
  await lab.clock.advance(30 * 1000);
  a.proto.sendTo(B, 1);
  assert.equal(await sent(), 1);
});

Deno.test("a peer stays connected 60 s after an unanswered message, then needs a hello", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  await connect(lab);
  lab.net.filter = (d) => d.fromHost !== b.ip;
  await lab.clock.advance(5 * 1000);
  a.proto.sendTo(B, 4);
  a.proto.probe(B); // a probe of a connected peer sends nothing
  await lab.net.flush();
  await lab.clock.advance(59.5 * 1000);
  assert.equal(a.proto.isConnected(B), true);
  assert.equal(a.proto.sendTo(B, 4), true, "still sent as data");
  await lab.net.flush();
  await lab.clock.advance(0.5 * 1000);
  assert.equal(a.proto.isConnected(B), false);
  lab.net.dropped = [];
  lab.net.delivered = [];
  assert.equal(a.proto.sendTo(B, 4), false);
  await lab.net.flush();
  assert.deepEqual(trace(lab).map((t) => t.split("/")[0]), ["01>10:1"], "a hello0 went out");
});

Deno.test("an empty data message is never answered; a non-empty one always is", async () => {
  const lab = await makeLab([A, B]);
  const [a] = lab.nodes;
  await connect(lab);
  a.proto.sendTo(B, 6); // unused code: an empty reply
  await lab.net.flush();
  assert.deepEqual(trace(lab), ["01>10:3/25", "10>01:4/24"]);
  lab.net.delivered = [];
  a.proto.sendTo(B, 4); // node information: answered with text
  await lab.net.flush();
  const reply = lab.net.delivered[1].bytes;
  assert.equal(new TextDecoder().decode(reply.subarray(4, -20)), "\x040.1.0, test");
  assert.equal(lab.net.delivered.length, 3, "the answer is acknowledged, the ack is not");
  assert.equal(lab.net.delivered[2].bytes.length, 24);
});

Deno.test("a revoked certificate is refused in handshakes and revoked peers can be dropped", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  lab.revoked.add(a.id.serial);
  a.proto.probe(B);
  await lab.net.flush();
  assert.deepEqual(trace(lab).map((t) => t.split("/")[0]), ["01>10:0"], "b does not answer");
  assert.ok(b.log.lines.some((l) => l.includes("revoked")));
  assert.deepEqual(b.proto.peers(), []);
  // Revocation after the session: the node drops the peer when the CRL changes.
  lab.revoked.clear();
  await lab.clock.advance(60 * 1000);
  await connect(lab);
  assert.deepEqual(a.proto.dropRevoked((s) => s === b.id.serial), [B]);
  assert.equal(a.proto.isConnected(B), false);
});

Deno.test("a handshake whose certificate CN does not match the source address is ignored", async () => {
  const lab = await makeLab([A, B, "0000000000000011"]);
  const [a, b, c] = lab.nodes;
  // c replays a's hello0 from its own address.
  lab.net.inject({
    fromHost: c.ip,
    fromPort: 326,
    toHost: b.ip,
    toPort: 326,
    bytes: encodeHello0(a.id.cert.der),
  });
  await lab.net.flush();
  assert.equal(lab.net.delivered.length, 1, "no answer");
  assert.ok(b.log.lines.some((l) => l.includes("does not match the source address")));
  // From another host address inside a's subnet it is accepted.
  const other = nodeIp(lab.ca.network, A).replace(/::1$/, "::42");
  lab.net.inject({
    fromHost: other,
    fromPort: 326,
    toHost: b.ip,
    toPort: 326,
    bytes: encodeHello0(a.id.cert.der),
  });
  await lab.net.flush();
  assert.equal(seqOf(lab.net.delivered[2].bytes), 1, "b answered with seq 1");
  assert.equal(lab.net.delivered[2].toHost, a.ip, "to a's node address");
  assert.deepEqual(b.proto.peers().map((p) => p.prefix), [A]);
});

Deno.test("datagrams from outside the network or too short are ignored", async () => {
  const lab = await makeLab([A, B]);
  const [a, b] = lab.nodes;
  lab.net.inject({
    fromHost: "2001:db8:43::1",
    fromPort: 326,
    toHost: b.ip,
    toPort: 326,
    bytes: encodeHello0(a.id.cert.der),
  });
  lab.net.inject({
    fromHost: "10.0.0.1",
    fromPort: 326,
    toHost: b.ip,
    toPort: 326,
    bytes: encodeHello0(a.id.cert.der),
  });
  lab.net.inject({
    fromHost: a.ip,
    fromPort: 326,
    toHost: b.ip,
    toPort: 326,
    bytes: new Uint8Array(4),
  });
  await lab.net.flush();
  assert.equal(lab.net.delivered.length, 3);
  assert.deepEqual(b.proto.peers(), []);
});

Deno.test("a peer is forgotten when its certificate expires", async () => {
  const lab = await makeLab([A, B]);
  const [a] = lab.nodes;
  // Replace b with a node whose certificate ends in two minutes.
  const notBefore = new Date(lab.clock.now() - 3600_000);
  const shortB = lab.ca.issue(B, { notBefore, days: (3600 + 120) / 86400 });
  lab.nodes[1] = makeNode(lab.ca, shortB, lab.net, lab.clock, {}, lab.revoked);
  await connect(lab);
  await lab.clock.advance(119 * 1000);
  assert.deepEqual(a.proto.expire(), []);
  await lab.clock.advance(2 * 1000);
  assert.equal(a.proto.isConnected(B), true, "still in the table until the next expiry check");
  assert.deepEqual(a.proto.expire(), [B]);
  assert.equal(a.proto.isConnected(B), false);
  assert.deepEqual(a.proto.peers(), []);
});

Deno.test("a seq-1 message without protocol field (protocol 0) is handled unless min_protocol ≥ 7", async () => {
  for (const minProtocol of [1, 7]) {
    const lab = await makeLab([A, B], () => ({ minProtocol: () => minProtocol }));
    const [a, b] = lab.nodes;
    const legacy = new Uint8Array([0, 0, 0, 1, ...sha1(b.id.cert.der), ...a.id.cert.der]);
    lab.net.inject({ fromHost: a.ip, fromPort: 326, toHost: b.ip, toPort: 326, bytes: legacy });
    // a's own answer to b's seq 2 is not part of this test.
    lab.net.filter = (d) => d.toHost !== a.ip;
    await lab.net.flush();
    const answers = lab.net.dropped.map((d) => d.bytes);
    if (minProtocol === 7) {
      assert.deepEqual(answers, [], "protocol-0 peers ignored");
    } else {
      assert.equal(answers.length, 1);
      assert.equal(seqOf(answers[0]), 2);
      assert.equal(answers[0].length, 4 + 128 + 128, "no protocol field for a protocol-0 peer");
    }
  }
});

Deno.test("a protocol-0 seq 1 is recognised whatever the first fingerprint byte", async () => {
  for (const first of [0x00, 0x3f, 0x7f, 0xc0, 0xff]) {
    const lab = await makeLab([A, B]);
    const [a, b] = lab.nodes;
    const stale = new Uint8Array(20).fill(first);
    const legacy = new Uint8Array([0, 0, 0, 1, ...stale, ...a.id.cert.der]);
    lab.net.inject({ fromHost: a.ip, fromPort: 326, toHost: b.ip, toPort: 326, bytes: legacy });
    lab.net.filter = (d) => d.toHost !== a.ip;
    await lab.net.flush();
    const answers = lab.net.dropped.map((d) => seqOf(d.bytes));
    assert.deepEqual(answers, [1], `fingerprint starting with ${first}: b sends its hello0`);
    assert.deepEqual(b.proto.peers().map((p) => p.prefix), [A]);
  }
});
