// Load generator of bench/registry.ts, run in a Worker so that the clients do not share the
// registry's JS thread. Message in: a LoadJob; message out: latencies in ms.

import { loadPrivateKey } from "../core/crypto.ts";
import { target, TestSession } from "../tests/helpers/registry.ts";

/** One measurement run. */
export interface LoadJob {
  kind: "issue" | "session";
  base: string;
  clients: number;
  seconds: number;
  csrs: string[];
  keys: string[];
  prefixes: string[];
  caPem: string;
}

async function issue(job: LoadJob, c: number): Promise<void> {
  const r = await fetch(
    job.base + target("requestCertificate", [["token", ""], ["req", job.csrs[c]]]),
  );
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`requestCertificate: HTTP ${r.status}`);
}

async function session(job: LoadJob, c: number): Promise<void> {
  const send = async (t: string, headers: Record<string, string>) => {
    const r = await fetch(job.base + t, { headers });
    return { status: r.status, body: new Uint8Array(await r.arrayBuffer()), headers: r.headers };
  };
  const s = new TestSession(job.prefixes[c], loadPrivateKey(job.keys[c]), job.caPem, send);
  if (await s.hello() !== 200) throw new Error("hello failed");
  const r = await s.call("getNetworkConfig");
  if (r.status !== 200 || !r.macOk) throw new Error(`getNetworkConfig: HTTP ${r.status}`);
}

const scope = self as unknown as {
  onmessage: (e: MessageEvent<LoadJob>) => void;
  postMessage(data: unknown): void;
};

scope.onmessage = async (e: MessageEvent<LoadJob>) => {
  const job = e.data;
  const op = job.kind === "issue" ? issue : session;
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + job.seconds * 1000;
  await Promise.all(Array.from({ length: job.clients }, async (_, c) => {
    while (performance.now() < end) {
      const s = performance.now();
      await op(job, c);
      lat.push(performance.now() - s);
    }
  }));
  scope.postMessage({ lat, elapsed: (performance.now() - t0) / 1000 });
};
