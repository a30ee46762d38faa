// Memory of `re6st node` at rest with and without --metrics (root: network namespaces).
// Three nodes form a network; n2 serves metrics, n3 does not; both are sampled in the same
// run (the machine is noisy: compare the ratio), then n2 is scraped and sampled again.
//
//   deno run -A bench/metrics.ts [--rest S]
//   RE6ST_BIN=… deno run -A bench/metrics.ts --baseline   # another build, no --metrics at all
import { isRoot, requireRoot } from "../tests/netns/lab.ts";
import { withNetwork } from "../tests/netns/network.ts";
import { procSample } from "../tests/netns/perf.ts";
import { SCENARIO } from "../tests/netns/scenario.ts";

const restAt = Deno.args.indexOf("--rest");
const restS = restAt < 0 ? 30 : Number(Deno.args[restAt + 1]);
const baseline = Deno.args.includes("--baseline");
if (!isRoot) requireRoot();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number) => (kb / 1024).toFixed(1);

await withNetwork("metricsbench", {
  nodes: 3,
  hello: SCENARIO.hello,
  nodeArgs: (n) => n.name === "n2" && !baseline ? ["--metrics", "127.0.0.1:9100"] : [],
}, async (net) => {
  await net.waitReachable({ timeoutMs: SCENARIO.formMs });
  console.log(`network formed; ${restS} s at rest`);
  await sleep(restS * 1000);
  const rss = (name: string) => procSample(net.node(name).process!.pid)!.rssKb;
  const before = { n2: rss("n2"), n3: rss("n3") };
  if (baseline) {
    console.log(`node RSS at rest (MiB), no --metrics: n2 ${mb(before.n2)}, n3 ${mb(before.n3)}`);
    return;
  }
  for (let i = 0; i < 20; i++) {
    const r = await net.lab.exec("n2", [
      "curl",
      "-sS",
      "-f",
      "-o",
      "/dev/null",
      "http://127.0.0.1:9100/metrics",
    ]);
    if (r.code !== 0) throw new Error(`scrape failed: ${r.stderr}`);
  }
  await sleep(5000);
  const after = { n2: rss("n2"), n3: rss("n3") };
  console.log("node RSS at rest (MiB)     without --metrics (n3)   with --metrics (n2)   ratio");
  console.log(
    `before any scrape          ${mb(before.n3).padStart(8)}                 ` +
      `${mb(before.n2).padStart(8)}          ${(before.n2 / before.n3).toFixed(2)}`,
  );
  console.log(
    `after 20 scrapes           ${mb(after.n3).padStart(8)}                 ` +
      `${mb(after.n2).padStart(8)}          ${(after.n2 / after.n3).toFixed(2)}`,
  );
});
