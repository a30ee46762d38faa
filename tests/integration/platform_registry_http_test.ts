// The registry's HTTP server (platform/registry_http.ts) on loopback: keep-alive, deadlines,
// caps per source, and requests it refuses itself.

import assert from "node:assert/strict";
import net from "node:net";
import { memoryLogger } from "../../core/log.ts";
import type { RpcRequest } from "../../core/registry/rpc.ts";
import { type HttpServerOptions, serveHttp } from "../../platform/registry_http.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const LIMITS: HttpServerOptions = {
  maxConnections: 100,
  maxPerSource: 2,
  headerTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  trusted: (a) => a === "127.0.0.1",
};

function server(opts: Partial<HttpServerOptions> = {}) {
  const seen: RpcRequest[] = [];
  const log = memoryLogger(4);
  const s = serveHttp(
    ["127.0.0.1"],
    0,
    (req) => {
      seen.push(req);
      return Promise.resolve({
        status: req.httpMethod === "GET" ? 200 : 501,
        headers: { "Content-Type": "text/plain" },
        body: req.httpMethod === "GET" ? enc.encode(`${req.peerAddress} ${req.target}`) : null,
      });
    },
    log,
    { ...LIMITS, ...opts },
  );
  return { ...s, seen, log, [Symbol.asyncDispose]: () => s.shutdown() };
}

/** Reads from `conn` until it is closed; returns everything received. */
async function readAll(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(65536);
  let out = "";
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return out;
    out += dec.decode(buf.subarray(0, n));
  }
}

/** Reads one answer of `length` body bytes at most (keep-alive). */
async function readAnswer(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(65536);
  let out = "";
  while (!/\r\n\r\n/.test(out) || out.length < out.indexOf("\r\n\r\n") + 4 + contentLength(out)) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`closed after ${JSON.stringify(out)}`);
    out += dec.decode(buf.subarray(0, n));
  }
  return out;
}

function contentLength(head: string): number {
  return Number(/Content-Length: (\d+)/i.exec(head)?.[1] ?? 0);
}

/** A TCP connection from `local` (another loopback address), as node:net makes it. */
function connectFrom(local: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: local });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

const closed = (s: net.Socket) => new Promise<void>((r) => s.once("close", () => r()));

Deno.test("keeps HTTP/1.1 connections alive, answers pipelined requests in order, closes HTTP/1.0", async () => {
  await using s = server();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    await conn.write(enc.encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?c=d HTTP/1.1\r\n\r\n"));
    let got = "";
    while ((got.match(/HTTP\/1\.1 200/g) ?? []).length < 2 || !got.endsWith("/b?c=d")) {
      got += await readAnswer(conn);
    }
    assert.match(got, /127\.0\.0\.1 \/a[\s\S]*127\.0\.0\.1 \/b\?c=d$/);
    await conn.write(enc.encode("GET http://registry.example/c HTTP/1.0\r\n\r\n"));
    const last = await readAll(conn);
    assert.match(last, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: close\r\n\r\n127\.0\.0\.1 \/c$/);
  } finally {
    conn.close();
  }
  assert.deepEqual(s.seen.map((r) => r.target), ["/a", "/b?c=d", "/c"]);
});

Deno.test("refuses malformed and oversized heads itself, at debug, and bodies close the connection", async () => {
  await using s = server();
  const ask = async (text: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    try {
      await conn.write(enc.encode(text));
      return await readAll(conn);
    } finally {
      conn.close();
    }
  };
  assert.match(await ask("HELLO\r\n\r\n"), /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(
    await ask("GET /x HTTP/1.1\r\nX: " + "a".repeat(50_000) + "\r\n\r\n"),
    /^HTTP\/1\.1 431 /,
  );
  assert.match(
    await ask("POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"),
    /^HTTP\/1\.1 501 [\s\S]*Connection: close/,
  );
  assert.equal(s.seen.length, 1, "only the POST reached the handler");
  assert.ok(s.log.lines.some((l) => /DEBUG HTTP from 127\.0\.0\.1 refused with 400/.test(l)));
  assert.ok(!s.log.lines.some((l) => /ERROR|WARNING/.test(l)), s.log.lines.join("\n"));
});

Deno.test("a connection that sends no complete head is closed at the header deadline, an idle one at the idle timeout", async () => {
  await using s = server({ headerTimeoutMs: 1000, idleTimeoutMs: 1000 });
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const partial = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const kept = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    await partial.write(enc.encode("GET /slow HTT"));
    await kept.write(enc.encode("GET /k HTTP/1.1\r\n\r\n"));
    await readAnswer(kept);
    assert.equal(await readAll(silent), "", "closed without an answer");
    assert.equal(await readAll(partial), "");
    assert.equal(await readAll(kept), "", "the kept-alive connection is closed once idle");
  } finally {
    silent.close();
    partial.close();
    kept.close();
  }
  assert.deepEqual(s.seen.map((r) => r.target), ["/k"]);
});

Deno.test("a source over its cap loses its oldest idle connection; other and trusted sources keep theirs", async () => {
  await using s = server();
  const a1 = await connectFrom("127.0.0.2", s.port);
  const a1Closed = closed(a1);
  const a2 = await connectFrom("127.0.0.2", s.port);
  const b = await connectFrom("127.0.0.3", s.port);
  const admin = [1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port: s.port }));
  const a3 = await connectFrom("127.0.0.2", s.port);
  try {
    await a1Closed;
    for (const sock of [a2, b, a3]) assert.ok(!sock.closed && !sock.destroyed);
    // The others still work.
    const answer = new Promise<string>((r) => b.once("data", (d) => r(String(d))));
    b.write("GET /b HTTP/1.1\r\n\r\n");
    assert.match(await answer, /127\.0\.0\.3 \/b$/);
    for (const c of await Promise.all(admin)) {
      await c.write(enc.encode("GET /admin HTTP/1.1\r\n\r\n"));
      assert.match(await readAnswer(c), /127\.0\.0\.1 \/admin$/);
      c.close();
    }
    assert.ok(s.log.lines.some((l) => /More than 2 connections from 127\.0\.0\.2/.test(l)));
  } finally {
    for (const sock of [a1, a2, a3, b]) sock.destroy();
    await Promise.all([a2, a3, b].map(closed));
  }
});
