import assert from "node:assert/strict";
import { timeSecret } from "../../core/crypto.ts";
import { PeerTable } from "../../core/peer/peers.ts";
import {
  acceptPeerSecret,
  isConnected,
  isFresh,
  newSession,
  nextTxSeq,
  noteReceived,
  noteSent,
  startOwnSecret,
  takeHello0,
} from "../../core/peer/session.ts";
import type { PeerCert } from "../../core/peer/session.ts";

const T0 = 1_800_000_000_000;
/** One second on the clock (ms). */
const S = 1000;
const secretAt = (t: number) => timeSecret(BigInt(Math.round(t * 1000)));

Deno.test("a later secret is accepted and an earlier or equal one refused", () => {
  const s = newSession("01", secretAt(T0));
  const later = secretAt(T0 + 1 * S);
  assert.equal(acceptPeerSecret(s, secretAt(T0 - 1 * S), 10), false);
  assert.equal(acceptPeerSecret(s, later, 10), true);
  assert.equal(acceptPeerSecret(s, later, 10), false);
  assert.equal(s.protocol, 10);
  assert.equal(s.last, "connected");
});

Deno.test("a new session resets both counters to 2 so the first data seq is 3", () => {
  const s = newSession("01", secretAt(T0));
  s.txSeq = 40;
  s.rxSeq = 41;
  startOwnSecret(s, secretAt(T0 + 1 * S), 10);
  assert.equal(s.rxSeq, 2);
  assert.equal(nextTxSeq(s), 3);
  assert.equal(isConnected(s, T0 + 1 * S), false, "not connected until the peer answers");
});

Deno.test("replayed and older sequence numbers are not fresh", () => {
  const s = newSession("01", secretAt(T0));
  assert.equal(isFresh(s, 3), true);
  noteReceived(s, 5);
  assert.equal(isFresh(s, 5), false);
  assert.equal(isFresh(s, 4), false);
  assert.equal(isFresh(s, 6), true);
});

Deno.test("a message left unanswered for 60 s ends the connected state", () => {
  const s = newSession("01", secretAt(T0));
  assert.equal(isConnected(s, T0), false, "no session yet");
  acceptPeerSecret(s, secretAt(T0 + 1 * S), 10);
  noteSent(s, 0, T0);
  assert.equal(s.last, "connected", "empty messages need no answer");
  noteSent(s, 3, T0);
  noteSent(s, 3, T0 + 30 * S); // the earliest unanswered message counts
  assert.equal(isConnected(s, T0 + 59.9 * S), true);
  assert.equal(isConnected(s, T0 + 60 * S), false);
  noteReceived(s, 3);
  assert.equal(isConnected(s, T0 + 1000 * S), true);
});

Deno.test("hello0 may be sent at most once per 60 s", () => {
  const s = newSession("01", secretAt(T0));
  assert.equal(takeHello0(s, T0), true);
  assert.equal(takeHello0(s, T0 + 59 * S), false);
  assert.equal(takeHello0(s, T0 + 60 * S), true);
});

Deno.test("an exhausted sequence space disconnects the session", () => {
  const s = newSession("01", secretAt(T0));
  acceptPeerSecret(s, secretAt(T0 + 1 * S), 10);
  s.txSeq = 0xffffffff;
  assert.equal(isConnected(s, T0), false);
  assert.throws(() => nextTxSeq(s));
});

function fakeCert(prefix: string, notAfter: number): PeerCert {
  return {
    der: new Uint8Array(1),
    prefix,
    serial: 1n,
    notAfter,
    fingerprint: new Uint8Array(20),
    publicKey: null!,
  };
}

Deno.test("the candidate peer is the greatest known prefix not above the source bits", () => {
  const t = new PeerTable(secretAt(T0));
  for (const p of ["0000000000000110", "0000000000000010", "0000000000000111", "00000001"]) {
    t.getOrCreate(p);
  }
  assert.deepEqual(t.entries().map((s) => s.prefix), [
    "0000000000000010",
    "0000000000000110",
    "0000000000000111",
    "00000001",
  ]);
  const host = "0".repeat(63) + "1";
  assert.equal(t.candidate("0000000000000110" + host)?.prefix, "0000000000000110");
  assert.equal(t.candidate("0000000000000111" + host)?.prefix, "0000000000000111");
  assert.equal(t.candidate("0000000000001000" + host)?.prefix, "0000000000000111");
  assert.equal(t.candidate("0000000100000000" + host)?.prefix, "00000001");
  assert.equal(t.candidate("0000000000000001" + host), undefined);
});

Deno.test("entries are dropped once their certificate has expired", () => {
  const t = new PeerTable(secretAt(T0));
  t.setCert(t.getOrCreate("01"), fakeCert("01", T0 + 10 * S));
  t.setCert(t.getOrCreate("10"), fakeCert("10", T0 + 20 * S));
  t.getOrCreate("11"); // no certificate: never expires
  assert.deepEqual(t.expire(T0 + 5 * S), []);
  assert.deepEqual(t.expire(T0 + 10 * S), ["01"]);
  assert.equal(t.get("01"), undefined);
  assert.deepEqual(t.expire(T0 + 30 * S), ["10"]);
  assert.deepEqual(t.entries().map((s) => s.prefix), ["11"]);
  assert.equal(t.candidate("01" + "0".repeat(10)), undefined);
});
