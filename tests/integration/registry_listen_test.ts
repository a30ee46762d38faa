import assert from "node:assert/strict";
import { openRelaySocket } from "../../platform/registry_listen.ts";

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
