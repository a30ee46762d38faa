import assert from "node:assert/strict";
import { timeSecret, toHex } from "../../core/crypto.ts";
import { decodeHandshake } from "../../core/peer/frame.ts";
import type { Hello2 } from "../../core/peer/frame.ts";
import { newSecret, openHello2, sealHello2 } from "../../core/peer/handshake.ts";
import type { PeerCert } from "../../core/peer/session.ts";
import { testCa } from "../helpers/peer_lab.ts";
import type { Identity } from "../helpers/peer_lab.ts";

const asPeer = (id: Identity): PeerCert => ({
  der: id.cert.der,
  prefix: id.prefix,
  serial: id.serial,
  notAfter: id.cert.notAfter.getTime(),
  fingerprint: id.cert.sha1,
  publicKey: id.cert.publicKey,
});

Deno.test("a new secret is time-based and always above the current one", () => {
  const t = 1_700_000_000_123.456;
  const s = newSecret(t, new Uint8Array(20));
  assert.equal(toHex(s.subarray(0, 8)), "00060a2418202240");
  const ahead = timeSecret(BigInt(Math.floor(t * 1000)) + 5000n);
  const bumped = newSecret(t, ahead);
  assert.equal(
    new DataView(bumped.buffer).getBigUint64(0),
    new DataView(ahead.buffer).getBigUint64(0) + 1n,
  );
});

Deno.test("a sealed seq 2 opens with the receiver's key and the sender's certificate", async () => {
  const ca = await testCa(undefined, 2);
  const [x, y] = [ca.issue("01"), ca.issue("10")];
  const secret = newSecret(Date.now(), new Uint8Array(20));
  const bytes = sealHello2(secret, asPeer(y), x.key, 10);
  assert.equal(bytes.length, 4 + 1 + 128 + 128);
  const msg = decodeHandshake(bytes) as Hello2;
  assert.deepEqual(openHello2(msg, asPeer(x), y.key), { secret });
  assert.deepEqual(openHello2(msg, asPeer(y), y.key), { reason: "bad signature" });
  const wrongKey = openHello2(msg, asPeer(x), x.key);
  assert.ok("reason" in wrongKey, "a secret encrypted for y does not open with x's key");
});
