import { manualClock } from "../../core/clock.ts";
import assert from "node:assert/strict";
import { prefixFromCn } from "../../core/addressing.ts";
import { parseCertificate } from "../../core/cert.ts";
import { treeRows } from "../../core/registry/allocation.ts";
import {
  localRegistry,
  localSession,
  nodeCsr,
  registryFiles,
  target,
} from "../helpers/registry.ts";

Deno.test("1000 issued certificates never overlap and the tree merges back after expiry", async () => {
  const clock = manualClock(Date.now());
  const files = await registryFiles({ gracePeriod: 86400, anonymousPrefixLength: 20 });
  const local = localRegistry(files, { clock });
  try {
    const { csr, key } = await nodeCsr(0);
    const url = target("requestCertificate", [["token", ""], ["req", csr]]);
    const prefixes: string[] = [];
    const subjectSerials = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const r = await local.rpc(url);
      assert.equal(r.status, 200);
      const cert = parseCertificate(new TextDecoder().decode(r.bodyBytes));
      prefixes.push(prefixFromCn(cert.cn!));
      subjectSerials.add(cert.subjectSerial!);
    }
    assert.equal(subjectSerials.size, 1000);
    const sorted = [...prefixes].sort();
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(!sorted[i].startsWith(sorted[i - 1]), `${sorted[i - 1]} overlaps ${sorted[i]}`);
    }
    // The registry node renews; every other certificate expires and is freed after the grace.
    await clock.advance(340 * 86400 * 1000);
    const s = localSession(local, prefixes[0], key, files.caPem);
    await s.hello();
    assert.equal((await s.call("renewCertificate")).status, 200);
    await clock.advance((26 * 86400 + 86400) * 1000);
    local.registry.cleanup();
    const rows = treeRows(local.registry.db);
    assert.deepEqual(rows.filter((r) => r.cert !== null).map((r) => r.prefix), [prefixes[0]]);
    assert.equal(rows.length, 21, "the registry node plus one free block per level");
    assert.equal(local.registry.certs.size, 1);
  } finally {
    await local.close();
    await files.cleanup();
  }
});

Deno.test("a prefix left pending by a crash during signing is freed at start-up", async () => {
  const files = await registryFiles();
  let local = localRegistry(files);
  try {
    const { csr } = await nodeCsr(0);
    const url = target("requestCertificate", [["token", ""], ["req", csr]]);
    assert.equal((await local.rpc(url)).status, 200);
    // Simulate a kill between the allocation and the signature of a second certificate.
    const db = local.registry.db;
    db.tx(() =>
      db.sql.prepare("UPDATE cert SET cert = 'pending' WHERE prefix = ?").run(
        "0000000000000001",
      )
    );
    await local.close();
    local = localRegistry(files);
    assert.ok(local.log.lines.some((l) => l.includes("Freed 1 prefix")));
    const next = parseCertificate(new TextDecoder().decode((await local.rpc(url)).bodyBytes));
    assert.equal(next.cn, "1/16");
  } finally {
    await local.close();
    await files.cleanup();
  }
});

Deno.test("a restart bumps the version only when the published options changed", async () => {
  const files = await registryFiles();
  let local = localRegistry(files);
  try {
    const { csr } = await nodeCsr(0);
    await local.rpc(target("requestCertificate", [["token", ""], ["req", csr]]));
    assert.equal(local.registry.versionNumber(), 1);
    await local.close();
    local = localRegistry(files);
    assert.equal(local.registry.versionNumber(), 1);
    await local.close();
    files.config.hello = 20;
    files.config.sameCountry = ["FR"];
    local = localRegistry(files);
    assert.equal(local.registry.versionNumber(), 2);
    const last = String(local.registry.db.getConfig("last_config"));
    assert.match(last, /"hello": 20, .*"same_country": \["FR"\]/);
  } finally {
    await local.close();
    await files.cleanup();
  }
});
