/**
 * A whole re6st network in a lab: the underlay of topology.ts, a CA, a registry (with the
 * registry's own node beside it on n1), N enrolled nodes, and what tests, benches and the demo
 * need to look at it: status documents, the all-pairs reachability matrix, failure injection
 * and a report of what did not come up.
 *
 * Everything runs through the real command line (`re6st registry`, `re6st conf --anonymous`,
 * `re6st node --config …`) inside the lab's namespaces; status comes from each node's control
 * socket (the document `re6st status --json --run <dir>` prints; unix sockets are reachable
 * across network namespaces, so the lab reads them directly).
 */
import { join } from "node:path";
import { bitsFromIp, nodeIp, prefixFromCn } from "../../core/addressing.ts";
import { createCa, fingerprint, parseCertificate } from "../../core/cert.ts";
import { runFile } from "../../core/constants.ts";
import { toHex } from "../../core/crypto.ts";
import { STATUS_SCHEMA_VERSION, type StatusDocument } from "../../core/status/document.ts";
import { ControlError, queryControl } from "../../platform/control.ts";
import { selfArgv } from "../../platform/self.ts";
import { type Child, type ChildStatus, createLab, type Lab } from "./lab.ts";
import { measureReachability, missingPairs, type Reachability } from "./reach.ts";
import { buildTopology, type Placement, type Topology } from "./topology.ts";

/** Options of {@link buildNetwork}. */
export interface NetworkOptions {
  /** Number of nodes, registry node included (default 8). */
  nodes?: number;
  /** Babel hello interval published by the registry (`--hello`, seconds). */
  hello?: number;
  /** `--tunnel-refresh` of the registry (seconds). */
  tunnelRefresh?: number;
  /** `--client-count` of the registry. */
  clientCount?: number;
  /** `--max-clients` of the registry. */
  maxClients?: number;
  /** `--encrypt` on the registry. */
  encrypt?: boolean;
  /** `--disable-proto` values given to every node (e.g. ["none"] to allow UDP tunnels). */
  disableProto?: readonly string[];
  /** Verbosity of the registry and nodes (default 2). */
  verbose?: number;
  /** CA (and so node) RSA key size (default 2048; OpenVPN refuses smaller keys). */
  keyBits?: number;
  /** The network (default 2001:db8:42::/48). */
  network?: string;
  /** Where files go (default: a new temporary folder, removed by stop() unless $R6LAB_KEEP). */
  workDir?: string;
  /** Start every node (default true); false stops once the nodes are enrolled. */
  start?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Extra `re6st node` arguments for a node. */
  nodeArgs?: (node: NetNode) => string[];
  /** Extra `re6st registry` arguments. */
  registryArgs?: readonly string[];
  /** Wraps the command line of `re6st registry` and `re6st node` (e.g. tests/netns/confine.ts). */
  wrap?: (command: "registry" | "node", argv: string[]) => string[];
}

/** A node of the network. */
export interface NetNode extends Placement {
  /** True for n1, the registry's own node (first certificate issued). */
  readonly isRegistry: boolean;
  /** Folder with ca.crt, cert.crt, cert.key, re6stnet.conf, run/, state/, log/, node.out. */
  readonly dir: string;
  readonly runDir: string;
  /** Certificate CN once enrolled ("6/16"). */
  cn: string | null;
  /** re6st IPv6 address once enrolled. */
  ip: string | null;
  /** The running `re6st node`, if started and not stopped. */
  process: Child | null;
  /** How the last `re6st node` process ended, if it did. */
  exit: ChildStatus | null;
}

/** A re6st network running in a lab. */
export interface Network {
  readonly lab: Lab;
  readonly topology: Topology;
  readonly workDir: string;
  readonly registryUrl: string;
  /** CIDR of the network. */
  readonly network: string;
  readonly nodes: readonly NetNode[];
  /** The registry process, while it runs. */
  readonly registry: Child | null;
  node(name: string): NetNode;
  /** Starts the registry on n1 and waits until it accepts connections. */
  startRegistry(): Promise<void>;
  /** Stops the registry (SIGTERM). */
  stopRegistry(): Promise<void>;
  /** Enrolls a node with `re6st conf --anonymous` (n1 must be first). */
  enroll(node: NetNode): Promise<void>;
  /** Starts `re6st node` on every node not running; returns when they are spawned. */
  startAll(): void;
  /** Starts `re6st node` on a node. */
  startNode(node: NetNode, extraArgs?: readonly string[]): void;
  /** Stops a node's `re6st node` (SIGTERM and wait, SIGKILL after `graceMs`). */
  stopNode(node: NetNode, graceMs?: number): Promise<void>;
  /** Kills every process in the node's namespace with SIGKILL, as a machine crash would. */
  crashNode(node: NetNode): Promise<void>;
  /** The node's status document, or null when it does not answer. */
  status(node: NetNode): Promise<StatusDocument | null>;
  /** The node's status document; throws a NetworkError saying why when it does not answer. */
  requireStatus(node: NetNode): Promise<StatusDocument>;
  /** Pings all pairs among `among` (default: every node with a running process). */
  reachability(among?: readonly NetNode[]): Promise<Reachability>;
  /**
   * Waits until all pairs of `among` answer; returns the time it took and the matrix. On
   * timeout throws an error that says what did not come up.
   */
  waitReachable(opts: {
    timeoutMs: number;
    among?: readonly NetNode[];
    what?: string;
    onRound?: (r: Reachability, elapsedMs: number) => void | Promise<void>;
  }): Promise<{ ms: number; matrix: Reachability }>;
  /** What did not come up, in words (registry, each node, missing pairs). */
  explain(last?: Reachability): Promise<string>;
  /** `re6st status --registry http://127.0.0.1/ --dot` on n1, or null if it failed. */
  registryDot(): Promise<string | null>;
  /** Stops every node and the registry, then removes the work folder if it made it. */
  stop(): Promise<void>;
}

/** The network did not come up: the message says what is missing. */
export class NetworkError extends Error {
  override name = "NetworkError";
}

/** The argv prefix that runs re6st: `$RE6ST_BIN` when set, else this source tree. */
export function re6stArgv(): string[] {
  const bin = Deno.env.get("RE6ST_BIN");
  return bin ? [bin] : selfArgv();
}

const ENV = { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };

/** Last `n` non-empty lines of a file ("" when unreadable). */
export function tail(path: string, n = 6): string {
  try {
    const lines = Deno.readTextFileSync(path).split("\n").filter((l) => l.trim());
    return lines.slice(-n).join("\n");
  } catch {
    return "";
  }
}

function indent(text: string): string {
  return text.split("\n").map((l) => `      ${l}`).join("\n");
}

/** Network bit-string of a CIDR ("2001:db8:42::/48"). */
function networkBits(cidr: string): string {
  const [addr, len] = cidr.split("/");
  return bitsFromIp(addr).slice(0, Number(len));
}

/** Builds the underlay, the CA and the registry, enrolls and starts the nodes. */
export async function buildNetwork(lab: Lab, opts: NetworkOptions = {}): Promise<Network> {
  const count = opts.nodes ?? 8;
  if (count < 2) throw new Error(`A network needs at least 2 nodes (got ${count})`);
  const log = opts.log ?? (() => {});
  const cidr = opts.network ?? "2001:db8:42::/48";
  const bits = networkBits(cidr);
  const ownsWorkDir = opts.workDir === undefined;
  const workDir = opts.workDir ?? await Deno.makeTempDir({ prefix: "r6lab-" });
  // A crash or Ctrl-C ends the process through Deno.exit (lab.ts): remove our files then too.
  const removeWorkDir = () => {
    if (!ownsWorkDir || Deno.env.get("R6LAB_KEEP")) return;
    try {
      Deno.removeSync(workDir, { recursive: true });
    } catch { /* already gone */ }
  };
  globalThis.addEventListener("unload", removeWorkDir);
  const re6st = re6stArgv();
  const wrap = opts.wrap ?? ((_: string, argv: string[]) => argv);
  const verbose = String(opts.verbose ?? 2);

  try {
    log(`building the underlay for ${count} nodes`);
    const topology = await buildTopology(lab, count);
    const registryUrl = `http://${topology.registryAddress}/`;
    const nodes: NetNode[] = topology.nodes.map((p, i) => {
      const dir = join(workDir, p.name);
      return {
        ...p,
        isRegistry: i === 0,
        dir,
        runDir: join(dir, "run"),
        cn: null,
        ip: null,
        process: null,
        exit: null,
      };
    });
    for (const n of nodes) {
      for (const d of ["run", "state", "log"]) {
        await Deno.mkdir(join(n.dir, d), { recursive: true });
      }
    }
    const regDir = join(workDir, "registry");
    await Deno.mkdir(regDir, { recursive: true });

    log(`making a CA for ${cidr}`);
    const ca = await createCa({ network: bits, bits: opts.keyBits, commonName: "re6st lab CA" });
    const caFile = join(regDir, "ca.crt");
    const keyFile = join(regDir, "ca.key");
    await Deno.writeTextFile(caFile, ca.certPem);
    await Deno.writeTextFile(keyFile, ca.keyPem, { mode: 0o600 });
    const caFingerprint = `sha256:${
      toHex(fingerprint(parseCertificate(ca.certPem).der, "sha256"))
    }`;
    const regNode = nodes[0];
    let registry: Child | null = null;
    const registryLog = join(regDir, "registry.log");
    const registryOut = join(regDir, "registry.out");

    const net: Network = {
      lab,
      topology,
      workDir,
      registryUrl,
      network: cidr,
      nodes,
      get registry() {
        return registry;
      },
      node(name) {
        const n = nodes.find((x) => x.name === name);
        if (!n) throw new Error(`No node "${name}" (nodes: ${nodes.map((x) => x.name).join(" ")})`);
        return n;
      },

      async startRegistry() {
        if (registry) return;
        const argv = [
          ...re6st,
          "registry",
          ...["--ca", caFile, "--key", keyFile, "--db", join(regDir, "registry.db")],
          ...["--port", "80", "--anonymous-prefix-length", "16"],
          ...["--run", regNode.runDir, "--logfile", registryLog, "-v", verbose],
          ...(opts.hello ? ["--hello", String(opts.hello)] : []),
          ...(opts.tunnelRefresh ? ["--tunnel-refresh", String(opts.tunnelRefresh)] : []),
          ...(opts.clientCount !== undefined ? ["--client-count", String(opts.clientCount)] : []),
          ...(opts.maxClients !== undefined ? ["--max-clients", String(opts.maxClients)] : []),
          ...(opts.encrypt ? ["--encrypt"] : []),
          ...(opts.registryArgs ?? []),
        ];
        const child = lab.spawn(regNode.name, wrap("registry", argv), {
          log: registryOut,
          env: ENV,
          cwd: regDir,
        });
        registry = child;
        let ended = null as ChildStatus | null;
        child.status.then((s) => {
          ended = s;
          if (registry === child) registry = null;
        });
        const probe = `exec 3<>/dev/tcp/${topology.registryAddress}/80`;
        const output = () => indent(tail(registryOut) || tail(registryLog) || "(no output)");
        const deadline = Date.now() + 60_000;
        for (;;) {
          if (ended) {
            throw new NetworkError(
              `the registry exited (code ${ended.code}) before accepting connections:\n` +
                output(),
            );
          }
          if ((await lab.exec(regNode.name, ["bash", "-c", probe])).code === 0) break;
          if (Date.now() > deadline) {
            throw new NetworkError(
              `the registry did not accept connections on ${registryUrl} within 60 s:\n` +
                output(),
            );
          }
          await new Promise((r) => setTimeout(r, 250));
        }
        log(`registry listening on ${registryUrl}`);
      },

      async stopRegistry() {
        const r = registry;
        if (!r) return;
        await r.stop(5000);
        registry = null;
      },

      async enroll(node) {
        const argv = [
          ...re6st,
          "conf",
          ...["--registry", registryUrl, "--anonymous", "--dir", node.dir],
          ...["--fingerprint", caFingerprint],
        ];
        const r = await lab.exec(node.name, argv, { env: ENV, timeoutMs: 120_000 });
        if (r.code !== 0) {
          throw new NetworkError(
            `enrollment of ${node.name} failed (re6st conf exit ${r.code}):\n` +
              indent((r.stderr || r.stdout).trim() || "(no output)"),
          );
        }
        const cert = parseCertificate(await Deno.readTextFile(join(node.dir, "cert.crt")));
        if (!cert.cn) throw new NetworkError(`${node.name}: certificate has no CN`);
        node.cn = cert.cn;
        node.ip = nodeIp(bits, prefixFromCn(cert.cn));
        log(`enrolled ${node.name}: ${node.cn} → ${node.ip}`);
      },

      startNode(node, extraArgs = []) {
        if (node.process) throw new Error(`${node.name}: re6st node already running`);
        const argv = [
          ...re6st,
          "node",
          ...["--config", join(node.dir, "re6stnet.conf"), "--run", node.runDir],
          ...["--state", join(node.dir, "state"), "--log", join(node.dir, "log"), "-v", verbose],
          // Nodes behind the NAT cannot be reached: they learn their address instead.
          ...(node.site === "nat" ? [] : ["--ip", node.underlay]),
          ...(opts.disableProto ?? []).flatMap((p) => ["--disable-proto", p]),
          ...(opts.nodeArgs?.(node) ?? []),
          ...extraArgs,
        ];
        const child = lab.spawn(node.name, wrap("node", argv), {
          log: join(node.dir, "node.out"),
          env: ENV,
          cwd: node.dir,
        });
        node.process = child;
        node.exit = null;
        child.status.then((s) => {
          if (node.process !== child) return;
          node.process = null;
          node.exit = s;
        });
      },

      startAll() {
        log(`starting ${nodes.filter((n) => !n.process).length} nodes`);
        for (const n of nodes) if (!n.process) net.startNode(n);
      },

      async stopNode(node, graceMs = 15_000) {
        const p = node.process;
        if (!p) return;
        node.exit = await p.stop(graceMs);
        node.process = null;
      },

      async crashNode(node) {
        const ns = lab.host(node.name).ns;
        const r = await lab.exec(node.name, ["true"]); // namespace still there
        if (r.code !== 0) throw new Error(`${node.name}: namespace ${ns} is gone`);
        const pids = (await lab.exec(node.name, ["ip", "netns", "pids", ns])).stdout
          .split(/\s+/).filter((p) => p).map(Number);
        for (const pid of pids) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* already gone */ }
        }
        const p = node.process;
        if (p) {
          node.exit = await p.status;
          node.process = null;
        }
      },

      async status(node) {
        try {
          const doc = await queryControl(
            runFile(node.runDir, "control"),
            { request: "status" },
            3000,
          ) as StatusDocument & { error?: string };
          return doc.error || doc.schema !== STATUS_SCHEMA_VERSION ? null : doc;
        } catch (e) {
          if (e instanceof ControlError) return null;
          throw e;
        }
      },

      async requireStatus(node) {
        const doc = await net.status(node);
        if (doc) return doc;
        const socket = runFile(node.runDir, "control");
        const why = !node.process
          ? "re6st node is not running"
          : (await Deno.stat(socket).then(() => true, () => false))
          ? "nothing valid answers on it"
          : "the node does not serve it (no socket file)";
        throw new NetworkError(`${node.name}: no status on ${socket}: ${why}`);
      },

      reachability(among) {
        const list = (among ?? nodes.filter((n) => n.process)).filter((n) => n.ip);
        return measureReachability(
          lab,
          list.map((n) => ({ name: n.name, host: n.name, ip: n.ip! })),
        );
      },

      async waitReachable(o) {
        const start = Date.now();
        let last: Reachability | null = null;
        while (Date.now() - start < o.timeoutMs) {
          last = await net.reachability(o.among);
          await o.onRound?.(last, Date.now() - start);
          if (last.full && last.total > 0) return { ms: Date.now() - start, matrix: last };
          // A node waited for has exited: no use waiting longer.
          if (o.among?.some((n) => !n.process)) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        throw new NetworkError(
          `${o.what ?? "all-pairs reachability"} not reached within ${o.timeoutMs / 1000} s\n` +
            await net.explain(last ?? undefined),
        );
      },

      async explain(last) {
        const lines: string[] = [];
        if (registry) lines.push("  registry: running");
        else {
          lines.push(`  registry: not running`);
          const t = tail(registryOut) || tail(registryLog);
          if (t) lines.push(indent(t));
        }
        for (const n of nodes) {
          const head = `  ${n.name} (${n.site}, ${n.ip ?? "not enrolled"})`;
          if (!n.process) {
            const how = n.exit ? `exited with code ${n.exit.code}` : "not started";
            lines.push(`${head}: re6st node ${how}`);
            const t = tail(join(n.dir, "node.out")) || tail(join(n.dir, "log", "re6stnet.log"));
            if (n.exit && t) lines.push(indent(t));
            continue;
          }
          const doc = await net.status(n);
          if (!doc) {
            lines.push(`${head}: running, but its control socket does not answer`);
            const t = tail(join(n.dir, "node.out"), 3);
            if (t) lines.push(indent(t));
            continue;
          }
          const up = doc.tunnels.filter((t) => t.established).length;
          const down = doc.children.filter((c) => c.state !== "running").map((c) => c.name);
          lines.push(
            `${head}: ${doc.state}, ${up}/${doc.tunnels.length} tunnels up, ` +
              `${doc.babel.routes} routes, ${doc.babel.neighbours.length} babel neighbours` +
              (doc.babel.running ? "" : ", babeld NOT running") +
              (down.length ? `, not running: ${down.join(", ")}` : ""),
          );
          for (const e of doc.errors.slice(-2)) lines.push(`      error: ${e.message}`);
        }
        if (last) {
          lines.push(`  reachability: ${last.reached}/${last.total} pairs`);
          const miss = missingPairs(last);
          if (miss.length) lines.push(`  missing: ${miss.join(" ")}`);
        }
        lines.push(`  files: ${workDir}`);
        return lines.join("\n");
      },

      async registryDot() {
        const r = await lab.exec(regNode.name, [
          ...re6st,
          "status",
          ...["--registry", "http://127.0.0.1/", "--dot", "--timeout", "10"],
        ], { env: ENV, timeoutMs: 30_000 });
        return r.code === 0 && r.stdout.includes("digraph") ? r.stdout : null;
      },

      async stop() {
        await Promise.allSettled(nodes.map((n) => net.stopNode(n)));
        await net.stopRegistry();
        removeWorkDir();
        globalThis.removeEventListener("unload", removeWorkDir);
      },
    };

    await net.startRegistry();
    await net.enroll(regNode);
    await pool(nodes.slice(1), 2, (n) => net.enroll(n));
    if (opts.start !== false) net.startAll();
    return net;
  } catch (e) {
    removeWorkDir();
    globalThis.removeEventListener("unload", removeWorkDir);
    throw e;
  }
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, fn: (x: T) => Promise<void>) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
  });
  await Promise.all(workers);
}

/**
 * Builds a network in a new lab, runs `fn` with it, then stops every process and removes every
 * namespace and file, whatever happened.
 */
export async function withNetwork(
  name: string,
  opts: NetworkOptions,
  fn: (net: Network) => Promise<void>,
): Promise<void> {
  const lab = await createLab(name);
  let net: Network | undefined;
  try {
    net = await buildNetwork(lab, opts);
    await fn(net);
  } finally {
    await net?.stop();
    await lab.cleanup();
  }
}

/** An established tunnel: the node that opened it, the one that accepted it, its protocol. */
export interface TunnelPair {
  client: NetNode;
  server: NetNode;
  protocol: string;
}

/**
 * Established client tunnels between running nodes outside the NAT whose two ends each have
 * at least `minTunnels` established tunnels (so that traffic can go around this one).
 */
export async function tunnelPairs(net: Network, minTunnels = 1): Promise<TunnelPair[]> {
  const docs = new Map<NetNode, StatusDocument>();
  for (const n of net.nodes) {
    if (n.site !== "nat" && n.process) docs.set(n, await net.requireStatus(n));
  }
  const up = (n: NetNode) => docs.get(n)?.tunnels.filter((t) => t.established).length ?? 0;
  const out: TunnelPair[] = [];
  for (const [client, doc] of docs) {
    for (const t of doc.tunnels) {
      const server = net.nodes.find((n) => n.cn === t.peer);
      if (t.direction !== "client" || !t.established || !server || !docs.has(server)) continue;
      if (up(client) >= minTunnels && up(server) >= minTunnels) {
        out.push({ client, server, protocol: t.protocol });
      }
    }
  }
  return out;
}
