// The registry over real HTTP on loopback: enrollment with the registry client, sessions,
// restart, listeners, request logging, the ::1 relay against a fake local node.

import assert from "node:assert/strict";
import { parseCertificate } from "../../core/cert.ts";
import { loadPrivateKey } from "../../core/crypto.ts";
import { memoryLogger } from "../../core/log.ts";
import { decodeNetworkConfig } from "../../core/netconfig/document.ts";
import { RegistryClient, type SessionIdentity } from "../../core/registry/client.ts";
import { decodeRelay, encodeRelay } from "../../core/registry/relay.ts";
import { type RunningRegistry, startRegistry } from "../../cmd/registry_daemon.ts";
import { waitFor } from "../helpers/wait.ts";
import { nodeCsr, type RegistryFiles, registryFiles, target } from "../helpers/registry.ts";

const dec = new TextDecoder();

function identity(prefix: string, keyPem: string, caPem: string): SessionIdentity {
  return { prefix, key: loadPrivateKey(keyPem), ca: caPem };
}

async function raw(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    let out = "";
    const buf = new Uint8Array(4096);
    for (let n; (n = await conn.read(buf)) !== null;) out += dec.decode(buf.subarray(0, n));
    return out;
  } finally {
    conn.close();
  }
}

async function withRegistry(
  fn: (
    r: RunningRegistry,
    files: RegistryFiles,
    log: ReturnType<typeof memoryLogger>,
  ) => Promise<void>,
  extra: Parameters<typeof registryFiles>[0] = {},
) {
  const files = await registryFiles(extra);
  const log = memoryLogger(3);
  const r = await startRegistry(files.config, { log, openRelaySocket: () => null });
  try {
    await fn(r, files, log);
  } finally {
    await r.stop();
    await files.cleanup();
  }
}

Deno.test("a registry started on a new folder keeps its database, WAL and shared memory private", async () => {
  const files = await registryFiles();
  const db = `${files.dir}/state/registry.db`;
  const reg = await startRegistry({ ...files.config, db }, {
    log: memoryLogger(3),
    openRelaySocket: () => null,
  });
  const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;
  try {
    await new RegistryClient(`http://127.0.0.1:${reg.port}/`).addToken("a@b", "tok");
    assert.equal(await mode(`${files.dir}/state`), 0o700);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) assert.equal(await mode(f), 0o600, f);
  } finally {
    await reg.stop();
    await files.cleanup();
  }
});

Deno.test("enrolls anonymously, authenticates, survives a restart and keeps every record", async () => {
  const files = await registryFiles();
  const log = memoryLogger(3);
  let reg = await startRegistry(files.config, { log, openRelaySocket: () => null });
  try {
    const url = `http://127.0.0.1:${reg.port}/`;
    const anon = new RegistryClient(url);
    assert.equal(parseCertificate(await anon.getCa()).serial, 0x120010db80042n);
    const { keyPem, csr } = await nodeCsr(0);
    const pem = (await anon.requestCertificate("", csr))!;
    const cert = parseCertificate(pem);
    assert.equal(cert.cn, "0/16");
    const client = new RegistryClient(url, {
      identity: identity("0000000000000000", keyPem, files.caPem),
    });
    const params = await decodeNetworkConfig(
      await client.getNetworkConfig(),
      loadPrivateKey(keyPem),
    );
    assert.equal(params.registry_prefix, "0000000000000000");
    await client.revoke("1"); // revoke by serial: the node keeps its prefix
    const second = (await anon.requestCertificate("", (await nodeCsr(1)).csr))!;
    assert.equal(parseCertificate(second).cn, "1/16");

    await reg.stop();
    reg = await startRegistry({ ...files.config, port: reg.port }, {
      log,
      openRelaySocket: () => null,
    });
    // The old client's session died with the restart: it gets 401 and redoes hello by itself.
    const renewed = await client.renewCertificate();
    assert.ok(renewed && parseCertificate(renewed).serial === 3n, "revoked serial is re-issued");
    const again = new RegistryClient(url, {
      identity: identity("0000000000000000", keyPem, files.caPem),
    });
    const after = await decodeNetworkConfig(await again.getNetworkConfig(), loadPrivateKey(keyPem));
    assert.deepEqual(after.crl, [1]);
    assert.equal((after.version as Uint8Array)[0], 2, "the revocation bump survived the restart");
    const third = (await anon.requestCertificate("", (await nodeCsr(2)).csr))!;
    assert.equal(parseCertificate(third).cn, "2/16", "no prefix given twice after restart");
    assert.ok(log.lines.some((l) => / GET hello 200 /.test(l)));
    assert.ok(
      log.lines.some((l) => / GET renewCertificate 401 .*no session/.test(l)),
      log.lines.join("\n"),
    );
    assert.ok(log.lines.some((l) => / GET getNetworkConfig 400 .*wrong HMAC/.test(l)) === false);
    assert.ok(!log.lines.some((l) => l.includes("BEGIN CERTIFICATE REQUEST")));
  } finally {
    await reg.stop();
    await files.cleanup();
  }
});

Deno.test("answers bad HTTP requests with 4xx/501 and keeps serving", async () => {
  await withRegistry(async (r, _files, log) => {
    const port = r.port;
    assert.match(await raw(port, "POST /getCa HTTP/1.0\r\nHost: x\r\n\r\n"), /^HTTP\/1\.[01] 501/);
    assert.match(await raw(port, "GET /a/b HTTP/1.0\r\nHost: x\r\n\r\n"), /^HTTP\/1\.[01] 400/);
    assert.match(await raw(port, "GET /getCa?x HTTP/1.0\r\nHost: x\r\n\r\n"), /^HTTP\/1\.[01] 400/);
    const huge = "/getCa?" + "a".repeat(40000);
    assert.match(
      await raw(port, `GET ${huge} HTTP/1.0\r\nHost: x\r\n\r\n`),
      /^HTTP\/1\.[01] 4\d\d/,
    );
    const big = await fetch(
      `http://127.0.0.1:${port}${
        target("requestCertificate", [["token", ""], ["req", "x".repeat(20000)]])
      }`,
    );
    await big.body?.cancel();
    assert.equal(big.status, 413);
    const ok = await fetch(`http://127.0.0.1:${port}/getCa`);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /BEGIN CERTIFICATE/);
    for (const junk of ["PUT /x HTTP/1.0\r\n\r\n", "\u0016\u0003\u0001 TLS?\r\n\r\n"]) {
      assert.match(await raw(port, junk), /^HTTP\/1\.1 (400|501)/);
    }
    const lines = log.lines.filter((l) => / (GET|POST|PUT) /.test(l));
    assert.ok(lines.length >= 5, "one log line per request");
    assert.ok(lines.some((l) => /INFO 127\.0\.0\.1 POST - 501/.test(l)));
    assert.deepEqual(
      log.lines.filter((l) => / (ERROR|WARNING) /.test(l) && !/babel|UDP socket/.test(l)),
      [],
      "a client's mistakes are not the registry's errors",
    );
  });
});

Deno.test("a registry without libcrypto issues the same way and says which RSA code it uses", async () => {
  const files = await registryFiles();
  const log = memoryLogger(3);
  const reg = await startRegistry(files.config, {
    log,
    openRelaySocket: () => null,
    libcrypto: `${files.dir}/no-such-libcrypto.so.3`,
  });
  try {
    const { csr, keyPem } = await nodeCsr(0);
    const r = await fetch(
      `http://127.0.0.1:${reg.port}${target("requestCertificate", [["token", ""], ["req", csr]])}`,
    );
    assert.equal(r.status, 200);
    const cert = parseCertificate(await r.text());
    assert.equal(cert.cn, "0/16");
    const client = new RegistryClient(`http://127.0.0.1:${reg.port}/`, {
      identity: identity("0000000000000000", keyPem, files.caPem),
    });
    const params = await decodeNetworkConfig(
      await client.getNetworkConfig(),
      loadPrivateKey(keyPem),
    );
    assert.equal(params.registry_prefix, "0000000000000000", "a session works");
    assert.ok(
      log.lines.some((l) =>
        /WARNING RSA operations: built-in .*Cannot load .*no-such-libcrypto/.test(l)
      ),
      log.lines.join("\n"),
    );
  } finally {
    await reg.stop();
    await files.cleanup();
  }
});

Deno.test("listens on IPv4 and IPv6 loopback on the same port", async () => {
  let v6 = true;
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
  } catch {
    v6 = false;
  }
  await withRegistry(async (r) => {
    const a = await fetch(`http://127.0.0.1:${r.port}/getCa`);
    await a.body?.cancel();
    assert.equal(a.status, 200);
    if (v6) {
      const b = await fetch(`http://[::1]:${r.port}/getCa`);
      await b.body?.cancel();
      assert.equal(b.status, 200);
      assert.equal(r.listening.length, 2);
    }
  }, { ipv6Bind: v6 ? "::1" : "" });
});

Deno.test("relays bootstrap, versions, topology and IPv4 queries through a fake local node", async () => {
  const files = await registryFiles();
  const node = Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 });
  const relaySock = Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 });
  const nodePort = (node.addr as Deno.NetAddr).port;
  const seen: string[] = [];
  const answers: Record<string, Record<number, string>> = {
    "0000000000000000": {
      1: "198.51.100.1,1194,tcp,FR;198.51.100.1,1195,udp,FR",
      4: "0.1.0, Linux",
      5: "1 1/16",
    },
    "0000000000000001": { 4: "0.1.0, Linux-x", 5: "0 0/16" },
  };
  const serveNode = (async () => {
    for (;;) {
      let data, from;
      try {
        [data, from] = await node.receive();
      } catch {
        return;
      }
      const m = decodeRelay(data)!;
      seen.push(`${m.prefix}:${m.code}`);
      const a = answers[m.prefix]?.[m.code];
      if (a !== undefined) {
        await node.send(encodeRelay(m.prefix, m.code, new TextEncoder().encode(a)), from);
      }
    }
  })();
  const log = memoryLogger(3);
  let reg = await startRegistry(files.config, {
    log,
    openRelaySocket: () => relaySock,
    relayOptions: { port: nodePort, timeoutMs: 300 },
    routes: { reachablePrefixes: () => Promise.resolve(["0000000000000001"]) },
  });
  try {
    const url = `http://127.0.0.1:${reg.port}/`;
    const anon = new RegistryClient(url);
    const { keyPem, csr } = await nodeCsr(0);
    await anon.addToken("reg@example.com", "tok0");
    assert.ok(await anon.requestCertificate("tok0", csr));
    await anon.requestCertificate("", (await nodeCsr(1)).csr);
    assert.ok(seen.includes("0000000000000000:0"), "new version announced to the local node");
    const { keyPem: k1 } = await nodeCsr(1);
    const client = new RegistryClient(url, {
      identity: identity("0000000000000001", k1, files.caPem),
    });
    // Candidates are the reachable 1/16 (our own → falls back to the registry) and 0/16.
    for (let i = 0; i < 2; i++) {
      const peer = await client.getBootstrapPeer();
      assert.ok(peer);
      assert.equal(peer.prefix, "0000000000000000");
      assert.equal(peer.addresses, "198.51.100.1,1194,tcp,FR;198.51.100.1,1195,udp,FR");
    }
    // The request's log line names the node offered and how many candidates there were.
    const offered = log.lines.filter((l) => /GET getBootstrapPeer 200 /.test(l));
    assert.equal(offered.length, 2);
    for (const l of offered) assert.match(l, /: offered 0\/16 \(2 candidates\)$/);
    assert.equal(await anon.getIPv4Information("reg@example.com"), "198.51.100.1");
    assert.deepEqual(await anon.versions(), {
      "0000000000000001": "0.1.0, Linux-x",
      "0000000000000000": "0.1.0, Linux",
    });
    const topo = await anon.topology();
    assert.deepEqual(topo[""].sort(), ["0/16", "1/16"]);
    assert.deepEqual(topo["0/16"], ["1/16"]);
    seen.length = 0;
    await anon.updateHMAC();
    assert.deepEqual(seen, ["0000000000000000:0"]);
    const old = new RegistryClient(url, {
      identity: identity("0000000000000000", keyPem, files.caPem),
    });
    assert.ok(await old.getBootstrapPeer() !== undefined);
    // Started again with another option: the version moves on and the local node hears of it.
    await reg.stop();
    seen.length = 0;
    reg = await startRegistry({ ...files.config, hello: 20 }, {
      log,
      openRelaySocket: () => Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 }),
      relayOptions: { port: nodePort, timeoutMs: 300 },
      routes: { reachablePrefixes: () => Promise.resolve([]) },
    });
    assert.ok(log.lines.some((l) => /Network configuration changed: new version/.test(l)));
    await waitFor(() => seen.length, { what: "the local node told of the new version at start" });
    assert.deepEqual(seen, ["0000000000000000:0"]);
  } finally {
    await reg.stop();
    node.close();
    await serveNode;
    await files.cleanup();
  }
});
