// What GEOIP2_MMDB costs a registry or a node: memory (RSS) of a process that opened a MaxMind
// DB the size of GeoLite2-Country next to one that did not, the time to open it, and lookups per
// second through platform/geoip.ts (npm mmdb-lib). The database is synthetic (random networks,
// 250 countries), written by tests/helpers/mmdb.ts. No root needed; compare within one run.
//
//   deno run -A bench/geoip.ts [--networks N]      (default 150000: about GeoLite2's size)
import { fileURLToPath } from "node:url";
import { countryRecord, type MmdbNetwork, writeMmdb } from "../tests/helpers/mmdb.ts";

const SELF = fileURLToPath(import.meta.url);

/** Resident memory of this process, in KiB. */
function rssKb(): number {
  const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"));
  return Number(m?.[1] ?? 0);
}

/** A deterministic pseudo-random source (the same database and addresses at every run). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomIpv4(r: () => number): string {
  return [1 + Math.floor(r() * 223), 0, 0, 0].map((x, i) => i ? Math.floor(r() * 256) : x)
    .join(".");
}

function randomIpv6(r: () => number): string {
  const w = () => Math.floor(r() * 0x10000).toString(16);
  return `2${Math.floor(r() * 0x1000).toString(16).padStart(3, "0")}:${w()}:${w()}::${w()}`;
}

if (Deno.args[0] === "--child") {
  // One measurement in a fresh process: `--child none|module|open PATH LOOKUPS` (module: the
  // reader loaded, no database opened). Half of the addresses
  // looked up are inside a network of the database (listed in PATH.hits), half random.
  const [, mode, path, lookups] = Deno.args;
  const out: Record<string, number> = {};
  if (mode === "open") {
    const { openGeoIp } = await import("../platform/geoip.ts");
    const t0 = performance.now();
    const db = await openGeoIp(path);
    out.openMs = performance.now() - t0;
    out.rssKb = rssKb();
    const hits = Deno.readTextFileSync(`${path}.hits`).split("\n");
    const r = prng(7);
    const ips = Array.from(
      { length: Number(lookups) },
      (_, i) => i % 2 ? hits[i % hits.length] : i % 4 ? randomIpv6(r) : randomIpv4(r),
    );
    let found = 0;
    const t1 = performance.now();
    for (const ip of ips) if (db.lookup(ip)?.country) found++;
    out.lookupsPerS = ips.length / ((performance.now() - t1) / 1000);
    out.foundShare = found / ips.length;
  } else {
    if (mode === "module") await import("../platform/geoip.ts");
    out.rssKb = rssKb();
  }
  console.log(JSON.stringify(out));
  Deno.exit(0);
}

const at = Deno.args.indexOf("--networks");
const count = at < 0 ? 150_000 : Number(Deno.args[at + 1]);
const r = prng(1);
const countries = Array.from({ length: 250 }, (_, i) =>
  countryRecord(
    String.fromCharCode(65 + Math.floor(i / 26), 65 + (i % 26)),
    ["EU", "AS", "AF", "NA", "SA", "OC", "AN"][i % 7],
  ));
const seen = new Set<string>();
const networks: MmdbNetwork[] = [];
while (networks.length < count) {
  const v6 = networks.length % 5 === 4; // a fifth IPv6, like GeoLite2
  const net = v6
    ? `${randomIpv6(r).split("::")[0].split(":").slice(0, 2).join(":")}::/32`
    : `${randomIpv4(r).split(".").slice(0, 3).join(".")}.0/24`;
  if (seen.has(net)) continue;
  seen.add(net);
  networks.push({ network: net, data: countries[Math.floor(r() * countries.length)] });
}
const dir = await Deno.makeTempDir({ prefix: "re6st-geoip-bench-" });
try {
  const path = `${dir}/bench.mmdb`;
  const t0 = performance.now();
  const bytes = writeMmdb(networks);
  await Deno.writeFile(path, bytes);
  // An address inside each network (its first one, plus one).
  const hits = networks.map(({ network }) =>
    network.includes(":") ? network.replace("::/32", "::1") : network.replace(".0/24", ".1")
  );
  await Deno.writeTextFile(`${path}.hits`, hits.join("\n"));
  console.log(
    `synthetic database: ${count} networks, ${(bytes.length / 2 ** 20).toFixed(1)} MiB ` +
      `(written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  const child = async (mode: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SELF, "--child", mode, path, "1000000"],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`child ${mode} failed`);
    return JSON.parse(new TextDecoder().decode(out.stdout)) as Record<string, number>;
  };
  const mib = (kb: number) => (kb / 1024).toFixed(1);
  const none = await child("none");
  const module = await child("module");
  const open = await child("open");
  console.log("process                     RSS (MiB)   ratio");
  for (
    const [what, m] of [
      ["without GeoIP", none],
      ["reader loaded, no file", module],
      ["database opened", open],
    ] as const
  ) {
    console.log(
      `${what.padEnd(26)}  ${mib(m.rssKb).padStart(8)}    ${(m.rssKb / none.rssKb).toFixed(2)}` +
        (m === none ? "" : `   (+${mib(m.rssKb - none.rssKb)} MiB)`),
    );
  }
  console.log(
    `open: ${open.openMs.toFixed(0)} ms; lookups: ${(open.lookupsPerS / 1000).toFixed(0)} k/s ` +
      `(${(open.foundShare * 100).toFixed(0)}% of them in a network of the database)`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
