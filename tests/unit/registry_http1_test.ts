// The registry's HTTP/1.x (core/registry/http1.ts): request heads and response bytes.

import assert from "node:assert/strict";
import { headEnd, HttpParseError, parseHead, responseBytes } from "../../core/registry/http1.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const head = (text: string) => parseHead(enc.encode(text));

Deno.test("finds the end of a head, also when it arrives in pieces", () => {
  const b = enc.encode("GET / HTTP/1.1\r\nA: b\r\n\r\nGET");
  assert.equal(headEnd(b, b.length), 24);
  assert.equal(headEnd(b, 23), -1);
  assert.equal(headEnd(b, b.length, 20), 24);
});

Deno.test("parses the request line and headers, joining repeated ones", () => {
  const h = head(
    "GET /getCa?x=1 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\n\r\n",
  );
  assert.equal(h.method, "GET");
  assert.equal(h.target, "/getCa?x=1");
  assert.equal(h.headers.get("x-forwarded-for"), "1.2.3.4, 5.6.7.8");
  assert.equal(h.keepAlive, true);
  assert.equal(h.hasBody, false);
});

Deno.test("keep-alive follows the HTTP version and Connection header", () => {
  assert.equal(head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keepAlive, false);
  assert.equal(head("GET / HTTP/1.0\r\n\r\n").keepAlive, false);
  assert.equal(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive, true);
  assert.equal(head("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").hasBody, true);
  assert.equal(head("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").hasBody, true);
  assert.equal(head("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").hasBody, false);
});

Deno.test("malformed heads are refused with their status", () => {
  const bad: [string, number][] = [
    ["GET /\r\n\r\n", 400],
    ["GET / HTTP/2.0\r\n\r\n", 505],
    ["GET / SPDY\r\n\r\n", 400],
    ["GE(T / HTTP/1.1\r\n\r\n", 400],
    ["GET /a b HTTP/1.1\r\n\r\n", 400],
    ["GET /\u00e9 HTTP/1.1\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nno colon\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nA: b\u001bc\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400],
  ];
  for (const [text, status] of bad) {
    assert.throws(
      () => head(text),
      (e) => e instanceof HttpParseError && e.status === status,
      JSON.stringify(text),
    );
  }
});

Deno.test("responses carry their length, no length for 204, and the connection's fate", () => {
  const ok = dec.decode(
    responseBytes(200, { "Content-Type": "text/plain" }, enc.encode("hi"), "1.1", true),
  );
  assert.equal(ok, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
  assert.equal(
    dec.decode(responseBytes(204, {}, null, "1.1", false)),
    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
  );
  assert.equal(
    dec.decode(responseBytes(429, { "Retry-After": "60" }, null, "1.0", true)),
    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nContent-Length: 0\r\n" +
      "Connection: keep-alive\r\n\r\n",
  );
});
