// The registry's view of reachable nodes, read from a scripted babeld on a unix socket.

import assert from "node:assert/strict";
import { memoryLogger } from "../../core/log.ts";
import { babelRoutingView } from "../../core/registry/routes.ts";
import { unixConnector } from "../../platform/babel_socket.ts";
import { VECTOR_NETWORK } from "../helpers/registry.ts";
import { waitFor } from "../helpers/wait.ts";

const ROUTES = [
  "add route 1 prefix 2001:db8:42:1::/64 from ::/0 installed yes id 02:00:00:00:00:00:00:02 " +
  "metric 96 refmetric 0 via fe80::1 if re6stnet1",
  "add route 2 prefix 2001:db8:42:6::/64 from ::/0 installed yes id 02:00:00:00:00:00:00:06 " +
  "metric 192 refmetric 96 via fe80::1 if re6stnet1",
  "add route 3 prefix 2001:db8:42:7::/64 from ::/0 installed yes id 02:00:00:00:00:00:00:07 " +
  "metric 65535 refmetric 96 via fe80::1 if re6stnet1",
];

function fakeBabeld(path: string) {
  const listener = Deno.listen({ transport: "unix", path });
  const conns = new Set<Deno.Conn>();
  const enc = new TextEncoder();
  const serve = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const say = (lines: string[]) =>
          conn.write(enc.encode(lines.map((l) => l + "\n").join("")));
        try {
          await say([
            "BABEL 1.0",
            "version babeld-1.12.1",
            "host fake",
            "my-id 02:00:00:00:00:00:00:01",
            "ok",
          ]);
          const buf = new Uint8Array(4096);
          let pending = "";
          for (let n; (n = await conn.read(buf)) !== null;) {
            pending += new TextDecoder().decode(buf.subarray(0, n));
            let nl;
            while ((nl = pending.indexOf("\n")) >= 0) {
              const line = pending.slice(0, nl);
              pending = pending.slice(nl + 1);
              await say(line.startsWith("dump") ? [...ROUTES, "ok"] : ["ok"]);
            }
          }
        } catch {
          // connection closed
        } finally {
          conns.delete(conn);
        }
      })();
    }
  })();
  return {
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await serve.catch(() => {});
    },
  };
}

Deno.test("reads reachable node prefixes from babeld and nothing while babeld is absent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "re6st-registry-babel-" });
  const path = `${dir}/babeld.sock`;
  const absent = babelRoutingView(unixConnector(path), VECTOR_NETWORK, memoryLogger(), path);
  try {
    const t0 = performance.now();
    assert.deepEqual(await absent.reachablePrefixes(), []);
    assert.ok(performance.now() - t0 < 100, "answers at once without babeld");
  } finally {
    await absent.close();
  }
  const babeld = fakeBabeld(path);
  const view = babelRoutingView(unixConnector(path), VECTOR_NETWORK, memoryLogger(), path);
  try {
    const got = await waitFor(async () => {
      const p = await view.reachablePrefixes();
      return p.length ? p : null;
    }, { what: "routes read from the fake babeld", intervalMs: 20 });
    assert.deepEqual(got.sort(), ["0000000000000001", "0000000000000110"]);
  } finally {
    await view.close();
    await babeld.close();
    await Deno.remove(dir, { recursive: true });
  }
});
