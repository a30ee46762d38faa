// Registry benchmark (figures printed, never asserted): certificates issued per second and
// authenticated sessions (hello + getNetworkConfig) per second with 1 and 4 concurrent
// clients over real HTTP on loopback, next to this machine's raw RSA-2048 signing rate.
//
//   deno run -A bench/registry.ts [--seconds S]

import { prefixFromCn } from "../core/addressing.ts";
import { createCa, createCsr, parseCertificate } from "../core/cert.ts";
import { generateRsaKey, loadPrivateKey, rsaSign } from "../core/crypto.ts";
import { memoryLogger } from "../core/log.ts";
import { startRegistry } from "../cmd/registry_daemon.ts";
import { builtinRsa } from "../core/registry/rsa.ts";
import { target } from "../tests/helpers/registry.ts";
import type { LoadJob } from "./registry_load.ts";

const seconds = Number(Deno.args[Deno.args.indexOf("--seconds") + 1]) || 3;
const NETWORK = "001000000000000100001101101110000000000001000010";

interface Row {
  name: string;
  clients: number;
  ops: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;
}

function summarize(name: string, clients: number, lat: number[], elapsed: number): Row {
  lat.sort((a, b) => a - b);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    name,
    clients,
    ops: lat.length,
    perSecond: r2(lat.length / elapsed),
    p50Ms: r2(quantile(lat, 0.5)),
    p99Ms: r2(quantile(lat, 0.99)),
    maxMs: r2(lat[lat.length - 1] ?? 0),
  };
}

async function run(
  name: string,
  clients: number,
  op: (client: number) => Promise<void>,
): Promise<Row> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    while (performance.now() < end) {
      const s = performance.now();
      await op(c);
      lat.push(performance.now() - s);
    }
  }));
  return summarize(name, clients, lat, (performance.now() - t0) / 1000);
}

const dir = await Deno.makeTempDir({ prefix: "re6st-bench-registry-" });
try {
  const ca = await createCa({ network: NETWORK, bits: 2048 });
  await Deno.writeTextFile(`${dir}/ca.crt`, ca.certPem);
  await Deno.writeTextFile(`${dir}/ca.key`, ca.keyPem, { mode: 0o600 });
  const nodeKeys = await Promise.all([0, 1, 2, 3].map(() => generateRsaKey(2048)));
  const csrs = nodeKeys.map((k) => createCsr(k, []));
  const caKey = loadPrivateKey(ca.keyPem);

  const rows: Row[] = [];
  const data = new Uint8Array(32);
  rows.push(
    await run("raw RSA-2048 sign (SHA-512)", 1, () => {
      rsaSign(caKey, data);
      return Promise.resolve();
    }),
  );
  const web = builtinRsa(caKey);
  rows.push(
    await run("raw RSA-2048 sign, Web Crypto pool", 4, () => web.sign(data).then(() => {})),
  );

  const reg = await startRegistry({
    ca: `${dir}/ca.crt`,
    key: `${dir}/ca.key`,
    db: `${dir}/registry.db`,
    port: 0,
    ipv4Bind: "127.0.0.1",
    ipv6Bind: "",
    anonymousPrefixLength: 16,
  }, { log: memoryLogger(0), openRelaySocket: () => null });
  const worker = new Worker(new URL("./registry_load.ts", import.meta.url).href, {
    type: "module",
  });
  try {
    const base = `http://127.0.0.1:${reg.port}`;
    const job: Omit<LoadJob, "kind" | "clients"> = {
      base,
      seconds,
      csrs,
      keys: nodeKeys,
      prefixes: [],
      caPem: ca.certPem,
    };
    const load = (name: string, kind: LoadJob["kind"], clients: number) =>
      new Promise<Row>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent<{ lat: number[]; elapsed: number }>) =>
          resolve(summarize(name, clients, e.data.lat, e.data.elapsed));
        worker.onerror = (e) => reject(new Error(e.message));
        worker.postMessage({ ...job, kind, clients });
      });
    for (const clients of [1, 4]) rows.push(await load("certificates issued", "issue", clients));
    // One prefix per node key: the latest certificate issued for each key.
    for (let c = 0; c < 4; c++) {
      const r = await fetch(base + target("requestCertificate", [["token", ""], ["req", csrs[c]]]));
      job.prefixes.push(prefixFromCn(parseCertificate(await r.text()).cn!));
    }
    for (const clients of [1, 4]) {
      rows.push(await load("sessions (hello + getNetworkConfig)", "session", clients));
    }
  } finally {
    worker.terminate();
    await reg.stop();
  }

  const sign = rows[0].perSecond;
  console.log(
    `re6st registry benchmark, ${seconds} s per row, ${navigator.hardwareConcurrency} CPUs, ` +
      `Deno ${Deno.version.deno}\n`,
  );
  console.log(
    "what".padEnd(38) + "clients".padStart(8) + "ops".padStart(8) + "ops/s".padStart(10) +
      "p50 ms".padStart(9) + "p99 ms".padStart(9) + "max ms".padStart(9) + "  % of sign",
  );
  for (const r of rows) {
    console.log(
      r.name.padEnd(38) + String(r.clients).padStart(8) + String(r.ops).padStart(8) +
        r.perSecond.toFixed(1).padStart(10) + r.p50Ms.toFixed(2).padStart(9) +
        r.p99Ms.toFixed(2).padStart(9) + r.maxMs.toFixed(2).padStart(9) +
        `  ${(100 * r.perSecond / sign).toFixed(0).padStart(8)}%`,
    );
  }
  console.log("\n" + JSON.stringify({ benchmark: "registry", seconds, rows }, null, 1));
} finally {
  await Deno.remove(dir, { recursive: true });
}
