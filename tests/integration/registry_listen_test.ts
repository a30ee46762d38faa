import assert from "node:assert/strict";
import { memoryLogger } from "../../core/log.ts";
import { listenHttp, openRelaySocket, rawTarget } from "../../platform/registry_listen.ts";

Deno.test("the relay socket is bound to ::1, out of reach of other hosts", () => {
  const sock = openRelaySocket();
  assert.ok(sock, "a relay socket on a machine with IPv6 loopback");
  try {
    const addr = sock.addr as Deno.NetAddr;
    assert.equal(addr.hostname, "::1");
    assert.ok(addr.port > 0);
  } finally {
    sock.close();
  }
});

Deno.test("HTTP listeners hand the raw target and peer to the handler and send its answer", async () => {
  const seen: string[] = [];
  const servers = listenHttp(["127.0.0.1"], 0, (req) => {
    seen.push(`${req.peerAddress} ${req.httpMethod} ${req.target} ${req.header("x-test")}`);
    return Promise.resolve({
      status: 200,
      headers: { "x-answer": "1" },
      body: new Uint8Array([65]),
    });
  }, memoryLogger(3));
  try {
    assert.deepEqual(servers.listening, [`127.0.0.1:${servers.port}`]);
    const r = await fetch(`http://127.0.0.1:${servers.port}/versions?a=b%20c`, {
      headers: { "x-test": "yes" },
    });
    assert.equal(await r.text(), "A");
    assert.equal(r.headers.get("x-answer"), "1");
    assert.deepEqual(seen, ["127.0.0.1 GET /versions?a=b%20c yes"]);
  } finally {
    await servers.shutdown();
  }
  assert.equal(rawTarget("http://[::1]:80"), "/");
});
