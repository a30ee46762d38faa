// Registry benchmark (figures printed, never asserted). For each registry source tree given
// (e.g. before/after a change, in the same run on the same machine), a `re6st registry`
// process on loopback, measured from this process:
//   - certificates issued per second (1 client) and the registry's RSS idle, right after the
//     load and at rest, with 0, 10,000 and 100,000 certificates preloaded in its database;
//   - on the empty one: issuance with 4 clients, sessions (hello + getNetworkConfig), steady
//     getNetworkConfig and getCa, with 1 and 4 clients;
// next to this machine's `openssl speed rsa2048`, and which RSA code the registry uses.
//
//   deno run -A bench/registry.ts [--seconds S] [--sizes 0,10000,100000] [--soak S]
//                                 [--tree NAME=DIR ...]    (default: this tree as "this")
//
// --soak (default 20 s): issuance with 4 clients at the largest size, then the RSS once more
// (V8's young generation grows under sustained load; DENO_V8_FLAGS is passed through).
//
// The clients are one JS thread of this process on the same cores as the registry; their RSA
// (checking and decrypting hello answers) goes through libcrypto when it loads, so that they
// are not what is measured.
// Preloaded certificates are issued for one node key (the registry never looks at that).

import { createCa, createCsr, parseCertificate } from "../core/cert.ts";
import { generateRsaKey, loadPrivateKey, rsaDecrypt, spkiDer } from "../core/crypto.ts";
import { type RsaEngine } from "../core/registry/rsa.ts";
import { memoryLogger } from "../core/log.ts";
import { libcryptoPrivateKey, registryRsa } from "../platform/libcrypto.ts";
import { target, TestSession } from "../tests/helpers/registry.ts";
import { type Answer, KeepAlive, prefixBits, preloadDb } from "./registry_client.ts";

const NETWORK = "001000000000000100001101101110000000000001000010";
/** Anonymous prefix length: room for 100,000 certificates and more. */
const PREFIX_LEN = 24;
const HERE = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

interface Args {
  seconds: number;
  sizes: number[];
  trees: [string, string][];
  /** Seconds of issuance with 4 clients at the largest size before a last RSS reading. */
  soak: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seconds: 3, sizes: [0, 10_000, 100_000], trees: [], soak: 20 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[++i];
    if (argv[i - 1] === "--seconds") a.seconds = Number(v);
    else if (argv[i - 1] === "--sizes") a.sizes = v.split(",").map(Number);
    else if (argv[i - 1] === "--soak") a.soak = Number(v);
    else if (argv[i - 1] === "--tree") {
      const eq = v.indexOf("=");
      a.trees.push(eq < 0 ? [v, v] : [v.slice(0, eq), v.slice(eq + 1)]);
    } else throw new Error(`Unknown argument ${argv[i - 1]}`);
  }
  if (!a.trees.length) a.trees.push(["this", HERE]);
  return a;
}

interface Rate {
  ops: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

async function measure(
  seconds: number,
  clients: number,
  op: (c: number) => Promise<void>,
): Promise<Rate> {
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    while (performance.now() < end) {
      const s = performance.now();
      await op(c);
      lat.push(performance.now() - s);
    }
  }));
  lat.sort((x, y) => x - y);
  const q = (f: number) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] ?? 0;
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    ops: lat.length,
    perSecond: r2(lat.length / ((performance.now() - t0) / 1000)),
    p50Ms: r2(q(0.5)),
    p99Ms: r2(q(0.99)),
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A registry process of `tree` on the database `db`. */
class RegistryProcess {
  readonly child: Deno.ChildProcess;
  readonly port = freePort();
  readonly base: string;
  startS = NaN;

  constructor(tree: string, dir: string, db: string, verbose = 1) {
    this.base = `http://127.0.0.1:${this.port}`;
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${tree}/main.ts`,
        "registry",
        ...["--ca", `${dir}/ca.crt`, "--key", `${dir}/ca.key`, "--db", db],
        ...["--port", String(this.port), "-4", "127.0.0.1", "-6", ""],
        ...["--anonymous-prefix-length", String(PREFIX_LEN), "-r", dir],
        ...["-l", `${dir}/registry.log`, "-v", String(verbose)],
      ],
      cwd: tree,
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  }

  async ready(): Promise<void> {
    const t0 = performance.now();
    for (;;) {
      try {
        const r = await fetch(this.base + "/getCa");
        await r.body?.cancel();
        if (r.status === 200) break;
      } catch {
        // not yet
      }
      await sleep(50);
    }
    this.startS = Math.round((performance.now() - t0) / 100) / 10;
  }

  rss(): number {
    return rssMb(this.child.pid);
  }

  async stop(): Promise<void> {
    this.child.kill("SIGTERM");
    await this.child.status;
  }
}

async function opensslSpeed(): Promise<{ one: number; two: number }> {
  const run = async (multi: string[]) => {
    const out = await new Deno.Command("openssl", {
      args: ["speed", "-seconds", "3", ...multi, "rsa2048"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const m = /rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)/.exec(new TextDecoder().decode(out.stdout));
    return m ? Number(m[1]) : NaN;
  };
  return { one: await run([]), two: await run(["-multi", "2"]) };
}

interface TreeFigures {
  engine: string;
  soak?: { n: number; seconds: number; perSecond: number; rss: number; rssRest: number };
  scale: {
    n: number;
    startS: number;
    rssIdle: number;
    issue: Rate;
    rssLoad: number;
    rssRest: number;
  }[];
  rows: Record<string, Rate>;
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const work = await Deno.makeTempDir({ prefix: "re6st-bench-registry-" });
  try {
    const ca = await createCa({ network: NETWORK, bits: 2048 });
    await Deno.writeTextFile(`${work}/ca.crt`, ca.certPem);
    await Deno.writeTextFile(`${work}/ca.key`, ca.keyPem, { mode: 0o600 });
    const caKey = loadPrivateKey(ca.keyPem);
    const rsa: RsaEngine = registryRsa(caKey, undefined, memoryLogger(0));
    const nodeKeys = await Promise.all([0, 1, 2, 3].map(() => generateRsaKey(2048)));
    const csrs = nodeKeys.map((k) => createCsr(k, []));
    const decrypters = nodeKeys.map((k) => {
      const der = new Uint8Array(loadPrivateKey(k).export({ type: "pkcs8", format: "der" }));
      try {
        return libcryptoPrivateKey(der);
      } catch {
        const key = loadPrivateKey(k);
        return { decrypt: (e: Uint8Array) => rsaDecrypt(key, e), close() {} };
      }
    });
    // One preloaded database per size, copied for each tree.
    for (const n of args.sizes) {
      const t0 = performance.now();
      await preloadDb(
        `${work}/preload-${n}.db`,
        ca.certPem,
        rsa,
        spkiDer(loadPrivateKey(nodeKeys[0])),
        n,
        PREFIX_LEN,
      );
      console.error(
        `preloaded ${n} certificates in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    const speed = await opensslSpeed();
    const figures: Record<string, TreeFigures> = {};
    for (const [name, tree] of args.trees) {
      figures[name] = await benchTree(name, tree, work, args, csrs, decrypters, ca.certPem, rsa);
    }
    for (const d of decrypters) d.close();
    rsa.close();
    report(args, figures, speed);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

async function benchTree(
  name: string,
  tree: string,
  work: string,
  args: Args,
  csrs: string[],
  decrypters: { decrypt(e: Uint8Array): Uint8Array }[],
  caPem: string,
  rsa: RsaEngine,
): Promise<TreeFigures> {
  const caSpki = parseCertificate(caPem).spki;
  const verify = (e: Uint8Array, s: Uint8Array) => rsa.verify(caSpki, "sha512", e, s);
  const out: TreeFigures = { engine: "", scale: [], rows: {} };
  const clientsOf = (reg: RegistryProcess) =>
    [0, 1, 2, 3].map(() => new KeepAlive("127.0.0.1", reg.port));
  const issue = (conns: KeepAlive[]) => async (c: number) => {
    const r = await conns[c].get(target("requestCertificate", [
      ["token", ""],
      ["req", csrs[c]],
      ["location", ""],
      ["ip", ""],
    ]));
    if (r.status !== 200) throw new Error(`${name}: requestCertificate answered ${r.status}`);
  };
  for (const n of args.sizes) {
    const dir = `${work}/${name}-${n}`;
    await Deno.mkdir(dir);
    await Deno.copyFile(`${work}/ca.crt`, `${dir}/ca.crt`);
    await Deno.copyFile(`${work}/ca.key`, `${dir}/ca.key`);
    await Deno.copyFile(`${work}/preload-${n}.db`, `${dir}/registry.db`);
    // On disk before the registry starts: the copy's write-back would slow its fsyncs.
    using copy = await Deno.open(`${dir}/registry.db`, { read: true });
    await copy.sync();
    const reg = new RegistryProcess(tree, dir, `${dir}/registry.db`);
    const conns = clientsOf(reg);
    try {
      await reg.ready();
      await sleep(1000);
      const rssIdle = reg.rss();
      const rate = await measure(args.seconds, 1, issue(conns));
      const rssLoad = reg.rss();
      await sleep(5000);
      const rssRest = reg.rss();
      out.scale.push({ n, startS: reg.startS, rssIdle, issue: rate, rssLoad, rssRest });
      if (n === args.sizes.at(-1) && args.soak > 0) {
        const soak = await measure(args.soak, 4, issue(conns));
        const rss = reg.rss();
        await sleep(5000);
        out.soak = { n, seconds: args.soak, perSecond: soak.perSecond, rss, rssRest: reg.rss() };
      }
      console.error(
        `${name}: ${n} certificates: ${rate.perSecond}/s, RSS ${rssIdle}/${rssLoad}/${rssRest} MB`,
      );
      if (n !== args.sizes[0]) continue;
      out.rows["issuance, 4 clients"] = await measure(args.seconds, 4, issue(conns));
      // One certificate per node key: the sessions' identities.
      const prefixes: string[] = [];
      for (let c = 0; c < 4; c++) {
        const r = await conns[c].get(
          target("requestCertificate", [["token", ""], ["req", csrs[c]]]),
        );
        const cn = parseCertificate(new TextDecoder().decode(r.body)).cn!;
        const [v, l] = cn.split("/");
        prefixes.push(prefixBits(Number(v), Number(l)));
      }
      const sessions = prefixes.map((p, c) =>
        new TestSession(p, decrypters[c], caPem, async (t, headers) => {
          const r: Answer = await conns[c].get(t, headers);
          return { status: r.status, body: r.body, headers: new Headers([...r.headers]) };
        }, verify)
      );
      const session = async (c: number) => {
        if (await sessions[c].hello() !== 200) throw new Error(`${name}: hello failed`);
        const r = await sessions[c].call("getNetworkConfig");
        if (r.status !== 200 || !r.macOk) throw new Error(`${name}: getNetworkConfig failed`);
      };
      const netconf = async (c: number) => {
        const r = await sessions[c].call("getNetworkConfig");
        if (r.status !== 200 || !r.macOk) throw new Error(`${name}: getNetworkConfig failed`);
      };
      const getCa = async (c: number) => {
        const r = await conns[c].get("/getCa");
        if (r.status !== 200) throw new Error(`${name}: getCa answered ${r.status}`);
      };
      for (const clients of [1, 4]) {
        out.rows[`sessions, ${clients} client${clients > 1 ? "s" : ""}`] = await measure(
          args.seconds,
          clients,
          session,
        );
      }
      for (const clients of [1, 4]) {
        out.rows[`getNetworkConfig, ${clients} client${clients > 1 ? "s" : ""}`] = await measure(
          args.seconds,
          clients,
          netconf,
        );
      }
      for (const clients of [1, 4]) {
        out.rows[`getCa, ${clients} client${clients > 1 ? "s" : ""}`] = await measure(
          args.seconds,
          clients,
          getCa,
        );
      }
    } finally {
      for (const c of conns) c.close();
      await reg.stop();
    }
  }
  // Which RSA code: what the registry says at -v 2.
  const dir = `${work}/${name}-engine`;
  await Deno.mkdir(dir);
  await Deno.copyFile(`${work}/ca.crt`, `${dir}/ca.crt`);
  await Deno.copyFile(`${work}/ca.key`, `${dir}/ca.key`);
  const probe = new RegistryProcess(tree, dir, `${dir}/registry.db`, 2);
  try {
    await probe.ready();
  } finally {
    await probe.stop();
  }
  const line = (await Deno.readTextFile(`${dir}/registry.log`)).split("\n")
    .find((l) => l.includes("RSA operations: "));
  out.engine = line ? line.slice(line.indexOf("RSA operations: ") + 16) : "built-in (not logged)";
  return out;
}

function report(
  args: Args,
  figures: Record<string, TreeFigures>,
  speed: { one: number; two: number },
): void {
  const names = Object.keys(figures);
  const col = 16;
  const line = (label: string, values: (number | string)[], ratio = true) => {
    let s = label.padEnd(44) + values.map((v) => String(v).padStart(col)).join("");
    if (ratio && names.length === 2 && typeof values[0] === "number" && values[0]) {
      s += `${((values[1] as number) / values[0]).toFixed(2)}x`.padStart(10);
    }
    console.log(s);
  };
  console.log(
    `\nre6st registry benchmark: ${args.seconds} s per figure, ${navigator.hardwareConcurrency} ` +
      `CPUs, Deno ${Deno.version.deno}, clients on the same machine\n`,
  );
  console.log(
    `openssl speed rsa2048 on this machine: ${speed.one} signatures/s on one core, ` +
      `${speed.two} on two (-multi 2)` +
      (Deno.env.get("DENO_V8_FLAGS") ? `; DENO_V8_FLAGS=${Deno.env.get("DENO_V8_FLAGS")}` : "") +
      "\n",
  );
  line("", names, false);
  for (const n of names) console.log(`  ${n}: RSA by ${figures[n].engine}`);
  for (const [i, s] of figures[names[0]].scale.entries()) {
    const get = (f: (x: TreeFigures["scale"][0]) => number) =>
      names.map((n) => f(figures[n].scale[i]));
    console.log(`\n${s.n} certificates in the database`);
    line("  start-up to first answer, s", get((x) => x.startS));
    line("  certificates issued per s, 1 client", get((x) => x.issue.perSecond));
    line("  issuance p99 latency, ms", get((x) => x.issue.p99Ms));
    line("  RSS idle, MB", get((x) => x.rssIdle));
    line("  RSS right after the load, MB", get((x) => x.rssLoad));
    line("  RSS at rest 5 s later, MB", get((x) => x.rssRest));
  }
  const soaked = figures[names[0]].soak;
  if (soaked) {
    console.log(`\n${soaked.seconds} s of issuance with 4 clients from ${soaked.n} certificates`);
    line("  certificates issued per s", names.map((n) => figures[n].soak?.perSecond ?? NaN));
    line("  RSS right after, MB", names.map((n) => figures[n].soak?.rss ?? NaN));
    line("  RSS at rest 5 s later, MB", names.map((n) => figures[n].soak?.rssRest ?? NaN));
  }
  console.log(`\non the empty database (per second; p99 ms in brackets)`);
  for (const row of Object.keys(figures[names[0]].rows)) {
    line(`  ${row}`, names.map((n) => figures[n].rows[row]?.perSecond ?? NaN));
    line("", names.map((n) => `(${figures[n].rows[row]?.p99Ms ?? NaN})`), false);
  }
  const first = figures[names[0]].scale[0], last = figures[names[0]].scale.at(-1)!;
  for (const n of names) {
    const sc = figures[n].scale;
    const ratio = sc.at(-1)!.issue.perSecond / sc[0].issue.perSecond;
    console.log(
      `${n}: issuance at ${last.n} certificates is ${(100 * ratio).toFixed(0)}% of the rate at ` +
        `${first.n}`,
    );
  }
  console.log("\n" + JSON.stringify({ benchmark: "registry", args, speed, figures }));
}

await main();
