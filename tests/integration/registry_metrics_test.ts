// `re6st registry --metrics`: a registry process on loopback scraped and parsed with a real
// Prometheus text parser.
import assert from "node:assert/strict";
import { recordingIo } from "../../cmd/io.ts";
import { parseCertificate } from "../../core/cert.ts";
import { prefixFromCn } from "../../core/addressing.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { main } from "../../main.ts";
import { histogramSeries, parseMetrics, sample } from "../helpers/prometheus.ts";
import { nodeCsr } from "../helpers/registry.ts";
import { freePort, startRegistryCli } from "../helpers/registry_cli.ts";

Deno.test("registry metrics: requests, latency, certificates, sessions, database, connections", async () => {
  const metricsPort = freePort();
  const reg = await startRegistryCli(["--metrics", `127.0.0.1:${metricsPort}`]);
  const client = new RegistryClient(reg.url);
  let idle: Deno.Conn | null = null;
  try {
    await client.getCa();
    const pems = [];
    for (const i of [0, 1]) pems.push(await client.requestCertificate("", (await nodeCsr(i)).csr));
    const cn = parseCertificate(pems[1]!).cn!;
    await client.hello(prefixFromCn(parseCertificate(pems[0]!).cn!)); // a session
    assert.equal(await main(["admin", "--registry", reg.url, "revoke", cn], recordingIo()), 0);
    await (await fetch(`${reg.url}noSuchMethod`)).body?.cancel(); // 400, no method label
    idle = await Deno.connect({ hostname: "127.0.0.1", port: reg.port }); // an open connection

    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const f = parseMetrics(text);
    const requests = (method: string, status: string) =>
      sample(f, "re6st_registry_requests_total", { method, status });
    assert.equal(requests("requestCertificate", "200"), 2);
    assert.equal(requests("hello", "200"), 1);
    assert.equal(requests("revoke", "204"), 1);
    assert.equal(requests("-", "400"), 1, "an unknown method is counted without its name");
    assert.ok(requests("getCa", "200")! >= 2, "the readiness probes and ours");
    const latency = "re6st_registry_request_duration_seconds";
    assert.equal(f.get(latency)!.type, "HISTOGRAM");
    const issue = histogramSeries(text, latency, { method: "requestCertificate" })!;
    assert.equal(issue.count, 2);
    assert.equal(Number(issue.buckets["+Inf"]), 2);
    assert.ok(issue.sum > 0);
    assert.equal(sample(f, "re6st_registry_certificates_issued_total"), 2);
    assert.equal(sample(f, "re6st_registry_revocations_total"), 1);
    assert.equal(sample(f, "re6st_registry_certificates"), 1, "the revoked prefix was freed");
    assert.equal(sample(f, "re6st_registry_revoked_certificates"), 1);
    assert.equal(sample(f, "re6st_registry_sessions"), 1);
    assert.ok(sample(f, "re6st_registry_database_bytes")! > 4096);
    assert.ok(sample(f, "re6st_registry_connections")! >= 1, "our idle connection");

    const other = await fetch(`http://127.0.0.1:${metricsPort}/`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
  } finally {
    idle?.close();
    assert.equal(await reg.stop(), 0);
  }
});

Deno.test("a registry whose metrics address cannot be bound does not start, and says why", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const dir = await Deno.makeTempDir({ prefix: "re6st-registry-metrics-" });
    const io = recordingIo();
    const code = await main([
      "registry",
      ...["--ca", `${dir}/ca.crt`, "--key", `${dir}/ca.key`, "--logfile", `${dir}/registry.log`],
      ...["--metrics", `127.0.0.1:${port}`],
    ], io).finally(() => Deno.remove(dir, { recursive: true }));
    assert.equal(code, 1);
    assert.match(
      io.stderr.join("\n"),
      new RegExp(`Cannot serve metrics on 127\\.0\\.0\\.1:${port}`),
    );
  } finally {
    taken.close();
  }
});
