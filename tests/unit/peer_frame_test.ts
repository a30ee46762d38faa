import assert from "node:assert/strict";
import { parseCertificate } from "../../core/cert.ts";
import { fromHex, hmacSha1, loadPrivateKey, rsaDecrypt, sha1, toHex } from "../../core/crypto.ts";
import {
  decodeData,
  decodeHandshake,
  decodeRelay,
  encodeData,
  encodeHello0,
  encodeHello1,
  encodeHello2,
  encodeRelay,
} from "../../core/peer/frame.ts";
import { newSession, nextTxSeq } from "../../core/peer/session.ts";
import { NODE1_CERT_PEM, NODE1_KEY_PEM } from "../helpers/vectors.ts";

const SECRET = fromHex("0005f1d2c3b4a5960123456789abcdef01234567");
const text = (s: string) => new TextEncoder().encode(s);

// VECTORS.md §5
const DATA_VECTORS: [number, string, string][] = [
  [3, "01", "00000003019e6ec57e93f4b085a69bae99fcd57fe1f716d178"],
  [4, "", "00000004cb19c33f1585f5d3b6f55bb102e9ee511d49215e"],
  [5, "04", "00000005040ee683fadfe49976ca95a9c2e7729af1d601ccc4"],
  [
    6,
    "8131302e302e302e312c313139342c756470",
    "000000068131302e302e302e312c313139342c756470b4699bd088e4e4173b468f5fcf1831326f2f43fc",
  ],
];

Deno.test("data messages of a fresh session match VECTORS §5 byte for byte", () => {
  const s = newSession("0000000000000110", SECRET);
  for (const [seq, payload, datagram] of DATA_VECTORS) {
    const n = nextTxSeq(s);
    assert.equal(n, seq);
    const out = encodeData(n, fromHex(payload), (m) => hmacSha1(SECRET, m));
    assert.equal(toHex(out), datagram);
  }
});

Deno.test("data messages of VECTORS §5 decode to their seq, payload and a valid MAC", () => {
  for (const [seq, payload, datagram] of DATA_VECTORS) {
    const f = decodeData(fromHex(datagram))!;
    assert.equal(f.seq, seq);
    assert.equal(toHex(f.payload), payload);
    assert.deepEqual(hmacSha1(SECRET, f.signed), f.mac);
  }
});

Deno.test("data decoding rejects handshake sequence numbers and short datagrams", () => {
  assert.equal(decodeData(new Uint8Array(23)), null);
  const seq2 = new Uint8Array(30);
  seq2[3] = 2;
  assert.equal(decodeData(seq2), null);
  assert.throws(() => encodeData(2, new Uint8Array(0), () => new Uint8Array(20)));
});

Deno.test("relay datagrams match VECTORS §6", () => {
  const prefix = "0000000000000110";
  const req = encodeRelay(prefix, 1);
  assert.equal(toHex(req), "303030303030303030303030303131300001");
  const ans = encodeRelay(prefix, 1, text("10.0.0.1,1194,udp;10.0.0.1,1194,tcp"));
  assert.equal(
    toHex(ans),
    "30303030303030303030303030313130000131302e302e302e312c313139342c7564703b31302e302e302e31" +
      "2c313139342c746370",
  );
  const d = decodeRelay(ans)!;
  assert.equal(d.prefix, prefix);
  assert.equal(d.code, 1);
  assert.equal(new TextDecoder().decode(d.payload), "10.0.0.1,1194,udp;10.0.0.1,1194,tcp");
  assert.deepEqual(decodeRelay(req), { prefix, code: 1, payload: new Uint8Array(0) });
});

Deno.test("relay decoding refuses an empty prefix, non-bits, or a missing code byte", () => {
  assert.equal(decodeRelay(fromHex("0001")), null);
  assert.equal(decodeRelay(fromHex("303200" + "01")), null);
  assert.equal(decodeRelay(fromHex("3031")), null);
  assert.equal(decodeRelay(fromHex("303100")), null);
  assert.throws(() => encodeRelay("", 1));
  assert.throws(() => encodeRelay("012", 1));
});

Deno.test("seq 0 and seq 1 from node 1 match VECTORS §11", () => {
  const node1 = parseCertificate(NODE1_CERT_PEM);
  const h0 = encodeHello0(node1.der);
  assert.equal(h0.length, 464);
  assert.equal(toHex(h0.subarray(0, 12)), "00000000308201c830820131");
  const fp2 = fromHex("ceb88f1f1653a38dcdcf7230e51f996d28763285");
  const h1 = encodeHello1(10, fp2, node1.der);
  assert.equal(h1.length, 485);
  assert.equal(
    toHex(h1.subarray(0, 29)),
    "000000010aceb88f1f1653a38dcdcf7230e51f996d28763285308201c8",
  );
  assert.equal(toHex(sha1(node1.der)), "aefe37f5d9cc745e644db19c66dbae6dd883f341");
  const d = decodeHandshake(h1);
  assert.ok(d && d.seq === 1);
  assert.equal(d.protocol, 10);
  assert.deepEqual(d.fingerprint, fp2);
  assert.deepEqual(d.cert, node1.der);
});

Deno.test("a seq-1 message without protocol field is read correctly in legacy mode", () => {
  const node1 = parseCertificate(NODE1_CERT_PEM);
  const fp2 = fromHex("ceb88f1f1653a38dcdcf7230e51f996d28763285");
  const old = new Uint8Array([0, 0, 0, 1, ...fp2, ...node1.der]);
  const d = decodeHandshake(old, true);
  assert.ok(d && d.seq === 1);
  assert.equal(d.protocol, 0);
  assert.deepEqual(d.fingerprint, fp2);
  assert.deepEqual(d.cert, node1.der);
});

Deno.test("seq 2 is 4 + 1 + 2 × modulus bytes and splits into equal halves", () => {
  const e = new Uint8Array(128).fill(1), s = new Uint8Array(128).fill(2);
  const h2 = encodeHello2(10, e, s);
  assert.equal(h2.length, 261);
  const d = decodeHandshake(h2);
  assert.ok(d && d.seq === 2);
  assert.equal(d.protocol, 10);
  assert.deepEqual(d.encrypted, e);
  assert.deepEqual(d.signature, s);
  assert.equal(encodeHello2(null, e, s).length, 260);
  assert.equal(decodeHandshake(new Uint8Array([0, 0, 0, 2, 10, 1, 2, 3])), null);
  assert.throws(() => encodeHello2(10, e, s.subarray(1)));
});

Deno.test("the VECTORS §11 secret decrypts with node 1's key", () => {
  const key = loadPrivateKey(NODE1_KEY_PEM);
  const ct = Uint8Array.from(
    atob(
      "iAUZJ0mFNyVSyaOEuh3gy4TrUHgO/j0wrQIL+eLdAxgzRiWhhcISy7mKgsjy/t+xzJPr9cNNhmIq4H84N89iiMXfyYd" +
        "YXsb+V2kTOJgkZThCao5jQARLHAViYvaDR4rX6oOh5tPONzZfVsvD4H0/lfimJRlRV6hc/xByRoAdpBc=",
    ),
    (c) => c.charCodeAt(0),
  );
  assert.equal(toHex(rsaDecrypt(key, ct)), "00060a24182022400123456789abcdef89abcdef");
});

Deno.test("handshake decoding refuses unknown seq, truncated packed integers and bare seqs", () => {
  assert.equal(decodeHandshake(new Uint8Array([0, 0, 0, 0])), null);
  assert.equal(decodeHandshake(new Uint8Array([0, 0, 0, 1, 0x21])), null);
  assert.equal(decodeHandshake(new Uint8Array([0, 0, 0, 3, 1])), null);
  assert.equal(decodeHandshake(new Uint8Array([0, 0, 0, 1, 10, 1, 2])), null);
});
