// Connection exhaustion (issue: 995 idle connections from one address killed the registry):
// a registry with 1024 file descriptors, 5,000 idle connections from one loopback address,
// and a client from another one still gets getCa and a certificate; the idle connections are
// all closed by the registry (cap, header deadline), and running out of descriptors is logged
// once per episode instead of stopping it.

import assert from "node:assert/strict";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { nodeCsr, registryFiles, target } from "../helpers/registry.ts";
import { freePort, reap, spawnRegistry, waitReady } from "../helpers/registry_child.ts";
import { waitFor } from "../helpers/wait.ts";

const FLOOD = fileURLToPath(new URL("../helpers/registry_flood.ts", import.meta.url));
const IDLE = 5000;

interface FloodState {
  opened: number;
  failed: number;
  closedByServer: number;
}

/** The attacker: a process with a high file limit opening `count` idle connections. */
function flood(port: number, count: number, from: string) {
  const child = new Deno.Command("prlimit", {
    args: ["--nofile=16384:16384", "--", Deno.execPath(), "run", "-A", FLOOD]
      .concat([String(port), String(count), from]),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const state: FloodState = { opened: 0, failed: 0, closedByServer: 0 };
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const lines = rest.split("\n");
      rest = lines.pop()!;
      if (lines.length) Object.assign(state, JSON.parse(lines[lines.length - 1]));
    }
  })();
  return {
    state,
    async stop() {
      await child.stdin.close().catch(() => {});
      await child.status;
      await reading;
    },
  };
}

/** One HTTP/1.0 GET from the loopback address `from`: status and body. */
function getFrom(
  from: string,
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: from });
    let data = "";
    s.on("connect", () => s.write(`GET ${path} HTTP/1.0\r\n\r\n`));
    s.on("data", (d) => data += String(d));
    s.on("error", reject);
    s.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
  });
}

async function underAttack(extra: object, opts: object): Promise<string> {
  const files = await registryFiles({ headerTimeout: 1, idleTimeout: 2, verbose: 2, ...extra });
  const port = freePort();
  const registry = spawnRegistry({ ...files.config, port }, opts, { nofile: 1024 });
  const attacker = flood(port, IDLE, "127.0.0.2");
  try {
    await waitReady(port);
    await waitFor(() => attacker.state.opened + attacker.state.failed >= IDLE, {
      what: `${IDLE} connection attempts from 127.0.0.2`,
      timeoutMs: 60_000,
    });
    const ca = await waitFor(async () => {
      const r = await getFrom("127.0.0.3", port, "/getCa");
      return r.status === 200 ? r.body : null;
    }, { what: "getCa answered to 127.0.0.3", timeoutMs: 30_000 });
    assert.match(ca, /BEGIN CERTIFICATE/);
    const { csr } = await nodeCsr(0);
    const cert = await getFrom(
      "127.0.0.3",
      port,
      target("requestCertificate", [["token", ""], ["req", csr]]),
    );
    assert.equal(cert.status, 200);
    assert.match(cert.body, /BEGIN CERTIFICATE/);
    // The idle connections the registry accepted are all closed by it.
    await waitFor(
      () => attacker.state.closedByServer + attacker.state.failed >= IDLE,
      { what: "every idle connection closed by the registry", timeoutMs: 60_000 },
    );
    assert.ok(attacker.state.closedByServer > 0);
    registry.kill("SIGTERM");
    assert.equal((await registry.status).code, 0, "the registry survived and stops cleanly");
    return await Deno.readTextFile(files.config.logfile!);
  } finally {
    await attacker.stop();
    await reap(registry);
    await files.cleanup();
  }
}

Deno.test("5,000 idle connections from one address with 1024 descriptors: another client is served", async () => {
  const log = await underAttack({}, {});
  assert.match(log, /More than 64 connections from 127\.0\.0\.2: closing the oldest idle/);
  assert.match(log, /At most 960 HTTP connections \(--max-connections 1000 does not fit/);
  assert.doesNotMatch(log, /Too many open files/);
});

Deno.test("out of descriptors, accepting backs off, says so once per episode and recovers", async () => {
  // Caps that do not fit the descriptors: the registry runs out of them.
  const log = await underAttack(
    { maxConnections: 10_000, maxConnectionsPerSource: 0 },
    { openFileLimit: null },
  );
  const lines = log.split("\n").filter((l) =>
    /Cannot accept connections|connections on .* again/.test(l)
  );
  assert.ok(lines.length >= 2, log.slice(-3000));
  assert.match(
    lines[0],
    /WARNING .*Cannot accept connections on 127\.0\.0\.1:\d+: Too many open files/,
  );
  lines.forEach((l, i) =>
    assert.match(
      l,
      i % 2 ? /INFO .*again after \d+ failed attempts/ : /Cannot accept/,
      "once per episode",
    )
  );
});
