// Exit codes of `re6st status` as documented in its --help, README and docs/status.md.
import assert from "node:assert/strict";
import { recordingIo } from "../../cmd/io.ts";
import { memoryLogger } from "../../core/log.ts";
import { NO_ROUTES } from "../../core/registry/relay.ts";
import { startRegistry } from "../../cmd/registry_daemon.ts";
import { main } from "../../main.ts";
import { registryFiles } from "../helpers/registry.ts";
import { waitFor } from "../helpers/wait.ts";

Deno.test("status --wait exits 3 when no node ever answered by the deadline", async () => {
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-exit-" });
  try {
    const io = recordingIo();
    const code = await main(["status", "--run", run, "--wait", "registry", "--timeout", "0"], io);
    assert.equal(code, 3);
    assert.equal(io.stderr.length, 1);
    assert.match(io.stderr[0], /not registry after 0s: no node is running/);
  } finally {
    Deno.removeSync(run, { recursive: true });
  }
});

/** Serves `handler` on a loopback port for the time of `fn`. */
async function serving(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (url: string) => Promise<void>,
) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/`);
  } finally {
    await server.shutdown();
  }
}

Deno.test("status --registry exits 4 when the registry refuses this origin (HTTP 403)", async () => {
  const files = await registryFiles();
  const registry = await startRegistry(files.config, {
    log: memoryLogger(),
    openRelaySocket: () => null,
    routes: NO_ROUTES,
  });
  // A reverse proxy in front of the registry, passing on a client outside the authorized origins.
  const proxy = async (req: Request) => {
    const u = new URL(req.url);
    const r = await fetch(`http://127.0.0.1:${registry.port}${u.pathname}${u.search}`, {
      headers: { "X-Forwarded-For": "192.0.2.7" },
    });
    return new Response(await r.arrayBuffer(), { status: r.status });
  };
  try {
    await serving(proxy, async (url) => {
      const io = recordingIo();
      assert.equal(await main(["status", "--registry", url, "--timeout", "10"], io), 4);
      assert.equal(io.stderr.length, 1);
      assert.match(io.stderr[0], /^re6st status: Registry .* forbidden \(HTTP 403\)/);
      assert.deepEqual(io.stdout, []);
    });
  } finally {
    await registry.stop();
    await files.cleanup();
  }
});

Deno.test("status --registry --dot prints the registry's topology as a Graphviz graph", async () => {
  const answers: Record<string, unknown> = {
    "/versions": { "0000000000000000": "0.1.0, Linux-x86_64", "0000000000000001": null },
    "/topology": { "": ["0/16"], "0/16": ["1/16"] },
  };
  const fakeRegistry = (req: Request) => {
    const body = answers[new URL(req.url).pathname];
    return body ? Response.json(body) : new Response(null, { status: 400 });
  };
  await serving(fakeRegistry, async (url) => {
    const io = recordingIo();
    assert.equal(await main(["status", "--registry", url, "--dot"], io), 0, io.stderr.join("\n"));
    const dot = io.stdout.join("\n");
    assert.match(dot, /^digraph re6st \{/);
    assert.match(dot, /"0\/16" \[label="0\/16\\n0\.1\.0, Linux-x86_64"\];/);
    assert.match(dot, /"1\/16" \[label="1\/16", style=dashed\];/);
    assert.match(dot, /"0\/16" -> "1\/16";/);
    assert.match(dot, /\}$/);
  });
});

Deno.test("a registry that cannot read its node's routes says so in its log and in status --registry (exit 1)", async () => {
  const files = await registryFiles();
  const log = memoryLogger(2);
  // No node runs: the babeld socket in the registry's --run folder is not there.
  const registry = await startRegistry(files.config, {
    log,
    openRelaySocket: () => null,
    routesGraceMs: 10,
  });
  try {
    await waitFor(
      () => log.lines.some((l) => /Cannot read the routes of this host's node/.test(l)),
      {
        what: "the registry's warning about its node's routes",
      },
    );
    assert.ok(log.lines.some((l) => /Is --run \(.*\) the run folder of the node/.test(l)));
    const url = `http://127.0.0.1:${registry.port}/`;
    const io = recordingIo();
    assert.equal(await main(["status", "--registry", url], io), 1, io.stderr.join("\n"));
    assert.match(io.stdout.join("\n"), /PROBLEM: the registry cannot read its node's routes from/);
    const json = recordingIo();
    assert.equal(await main(["status", "--registry", url, "--json"], json), 1);
    const view = JSON.parse(json.stdout.join("\n"));
    assert.equal(view.routes.reachable, false);
    assert.match(view.routes.source, /babeld\.sock/);
    assert.match(json.stderr.join("\n"), /cannot read its node's routes/);
  } finally {
    await registry.stop();
    await files.cleanup();
  }
});
