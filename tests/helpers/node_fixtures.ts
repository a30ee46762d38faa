// Node test fixtures: the VECTORS.md test CA, node keys and certificates, network
// configuration documents as a registry would send them, and fake parts for core/node.

import { deflateSync } from "node:zlib";
import { DatabaseSync } from "node:sqlite";
import { issueCertificate, parseCertificate } from "../../core/cert.ts";
import { generateRsaKey, loadPrivateKey, publicKeyOf, rsaEncrypt } from "../../core/crypto.ts";
import type { BabelClient } from "../../core/babel/local.ts";
import type { BabelSnapshot } from "../../core/babel/view.ts";
import { memoryLogger } from "../../core/log.ts";
import { openCache } from "../../core/node/cache.ts";
import { type ManualClock, manualClock } from "../../core/clock.ts";
import type { NodeParts } from "../../core/node/parts.ts";
import type { ManagedProcess, ProcessExit } from "../../core/node/supervisor.ts";
import type { NodeRegistry } from "../../core/node/registry_sync.ts";
import { signVersion } from "../../core/netconfig/version.ts";
import type { ConnectAnswer, HookEvent } from "../../core/openvpn/hooks.ts";
import { NODE_SPEC, type NodeOptions, toNodeOptions } from "../../core/options/node.ts";
import { parseCommandLine } from "../../core/options/parser.ts";
import { parseJournal } from "../../platform/journal.ts";
import type { JournalStore } from "../../platform/kernel_ops.ts";
import { createRecorderKernel, type RecorderKernel } from "../../platform/recorder.ts";
import { TEST_CA_CERT_PEM, TEST_CA_KEY_PEM } from "./vectors.ts";

export { TEST_CA_CERT_PEM, TEST_CA_KEY_PEM };

/** Network of the test CA. */
export const TEST_NETWORK_CIDR = "2001:db8:42::/48";

/** DH parameters as a fake registry serves them (only the PEM framing is checked). */
export const TEST_DH_PEM = "-----BEGIN DH PARAMETERS-----\nMIIB\n-----END DH PARAMETERS-----\n";

/** The required options of a node under test, with its folders under /c, /st, /lg and /run. */
export const TEST_NODE_ARGS: readonly string[] = [
  ...["--registry", "http://reg/", "--ca", "/c/ca.crt", "--cert", "/c/cert.crt"],
  ...["--key", "/c/cert.key", "-s", "/st", "-l", "/lg", "-r", "/run"],
];

let cachedKey: string | null = null;

/** A 1024-bit node key (the test CA's size), generated once per test process. */
export async function nodeKeyPem(): Promise<string> {
  return cachedKey ??= await generateRsaKey(1024);
}

/** Issues a node certificate for `cn` with the test CA (or `caKeyPem`/`caPem`). */
export function nodeCertPem(
  keyPem: string,
  o: {
    cn?: string;
    subjectSerial?: number;
    serial?: number;
    notBefore?: Date;
    notAfter?: Date;
    caPem?: string;
    caKeyPem?: string;
  } = {},
): string {
  const ca = parseCertificate(o.caPem ?? TEST_CA_CERT_PEM);
  const notBefore = o.notBefore ?? new Date(ca.notBefore.getTime() + 1000);
  return issueCertificate({
    ca,
    caKey: o.caKeyPem ?? TEST_CA_KEY_PEM,
    subject: [["serialNumber", String(o.subjectSerial ?? 1)], ["CN", o.cn ?? "6/16"]],
    publicKey: publicKeyOf(loadPrivateKey(keyPem)),
    serial: o.serial ?? 7,
    notBefore,
    notAfter: o.notAfter ?? new Date(notBefore.getTime() + 365 * 86400_000),
  }).pem;
}

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

/** A getNetworkConfig body for the node with `certPem`, as the registry would send it. */
export function networkConfigBody(
  certPem: string,
  o: {
    version?: number;
    extra?: Record<string, unknown>;
    babelKey?: Uint8Array;
    signWith?: string;
  } = {},
): Uint8Array {
  const cert = parseCertificate(certPem);
  const doc: Record<string, unknown> = {
    babel_default: "max-rtt-penalty 5000 rtt-max 500 rtt-decay 125",
    crl: [],
    protocol: 10,
    registry_prefix: "0000000000000000",
    client_count: 10,
    encrypt: false,
    hello: 15,
    max_clients: 20,
    min_protocol: 1,
    tunnel_refresh: 300,
    "": ["version"],
    version: b64(signVersion(o.signWith ?? TEST_CA_KEY_PEM, o.version ?? 1)),
    babel_hmac_sign: b64(
      rsaEncrypt(cert.publicKey, o.babelKey ?? Uint8Array.from({ length: 16 }, (_, i) => i)),
    ),
    ...o.extra,
  };
  return new Uint8Array(deflateSync(new TextEncoder().encode(JSON.stringify(doc))));
}

/** Parses node options as the command line would. */
export function nodeOptions(args: readonly string[]): NodeOptions {
  return toNodeOptions(
    parseCommandLine(NODE_SPEC, [...args], { readTextFile: () => "", cwd: "/" }),
  );
}

/** A registry that answers from functions; counts calls. */
export interface FakeRegistry extends NodeRegistry {
  calls: string[];
}

/**
 * Creates a fake registry; unset methods reject like an unreachable registry, except
 * getBootstrapPeer and getCountry, which know nothing.
 */
export function fakeRegistry(h: Partial<Omit<NodeRegistry, "url">> = {}): FakeRegistry {
  const calls: string[] = [];
  const down = (m: string) => () => Promise.reject(new Error(`Registry http://reg/ ${m}: down`));
  const wrap = <T>(m: string, f: (() => Promise<T>) | undefined) => () => {
    calls.push(m);
    return (f ?? down(m))();
  };
  return {
    url: "http://reg/",
    calls,
    getNetworkConfig: wrap("getNetworkConfig", h.getNetworkConfig),
    getDh: wrap("getDh", h.getDh),
    renewCertificate: wrap("renewCertificate", h.renewCertificate),
    getCa: wrap("getCa", h.getCa),
    getBootstrapPeer: wrap("getBootstrapPeer", h.getBootstrapPeer ?? (() => Promise.resolve(null))),
    getCountry(address) {
      calls.push("getCountry");
      return h.getCountry ? h.getCountry(address) : Promise.resolve(null);
    },
  };
}

/** A fake process: `exit()` ends it as if it died, `stop()` as if asked. */
export interface FakeProcess extends ManagedProcess {
  name: string;
  args: readonly string[];
  exit(e?: Partial<ProcessExit>): void;
  stopped: boolean;
}

let nextPid = 1000;

/** Creates a fake running process. */
export function fakeProcess(name: string, args: readonly string[] = []): FakeProcess {
  let done!: (e: ProcessExit) => void;
  const exited = new Promise<ProcessExit>((r) => done = r);
  const p: FakeProcess = {
    name,
    args,
    pid: nextPid++,
    exited,
    stopped: false,
    exit: (e = {}) =>
      done({ code: e.code ?? 1, signal: e.signal ?? null, lastLines: e.lastLines ?? [] }),
    stop() {
      p.stopped = true;
      done({ code: 0, signal: "SIGTERM", lastLines: [] });
      return exited;
    },
  };
  return p;
}

/** A babel client that is always connected and shows `snapshot`; it records commands. */
export function fakeBabelClient(
  snapshot?: BabelSnapshot,
): BabelClient & { closed: boolean; commands: string[] } {
  const snap = snapshot ?? { interfaces: [], neighbours: [], xroutes: [], routes: [] };
  const commands: string[] = [];
  return {
    commands,
    closed: false,
    connected: true,
    info: { version: "babeld-1.12.1", host: "test", myId: "00:00:00:00:00:00:00:01" },
    view: () => snap,
    waitConnected: () => Promise.resolve(),
    dump: () => Promise.resolve(snap),
    command(line) {
      commands.push(line);
      return Promise.resolve({ status: "ok" });
    },
    addInterface: () => Promise.resolve(),
    flushInterface: () => Promise.resolve(true),
    subscribe: () => () => {},
    close() {
      this.closed = true;
      return Promise.resolve();
    },
  };
}

/** The kernel journal of a node under test (its run folder is /run). */
export const TEST_JOURNAL = "/run/kernel-journal.json";

/** A journal store kept in `files` at `path`, as the run folder's file would be. */
export function mapJournal(files: Map<string, string>, path = TEST_JOURNAL): JournalStore {
  return {
    save(changes) {
      files.set(path, JSON.stringify(changes) + "\n");
      return Promise.resolve();
    },
    load: () => Promise.resolve(parseJournal(files.get(path) ?? "[]")),
  };
}

/** An open peer socket of a fake world: its callbacks, what it sent, whether it was closed. */
export interface FakeSocket {
  onDatagram: (host: string, port: number, bytes: Uint8Array) => Promise<void>;
  onError: (e: Error) => void;
  sent: { host: string; port: number; bytes: Uint8Array }[];
  closed: boolean;
}

/** Fake parts with a recorder kernel and in-memory files; inspect what the node did. */
export interface FakeWorld {
  parts: NodeParts;
  kernel: RecorderKernel;
  clock: ManualClock;
  log: ReturnType<typeof memoryLogger>;
  files: Map<string, string>;
  /** Folders made, with the mode asked for (undefined: default). */
  dirs: Map<string, number | undefined>;
  removed: string[];
  processes: FakeProcess[];
  babelConfigs: { args: string[]; configText: string }[];
  hookHandler: ((ev: HookEvent) => ConnectAnswer | void | Promise<ConnectAnswer | void>) | null;
  /** The control socket handler while the node serves it. */
  control: ((req: Record<string, unknown>, signal: AbortSignal) => unknown) | null;
  shellRuns: { cmd: string; env: Record<string, string> }[];
  registry: FakeRegistry;
  babel: ReturnType<typeof fakeBabelClient>;
  sockets: FakeSocket[];
  db: DatabaseSync;
}

/**
 * A fake world of an enrolled node (`key`, `cert` under /c) whose registry serves the
 * network configuration `config()` returns at each fetch, and the test DH parameters.
 */
export function enrolledWorld(
  key: string,
  cert: string,
  config: () => Uint8Array,
  o: Omit<Parameters<typeof fakeWorld>[0], "files" | "registry"> = {},
): FakeWorld {
  return fakeWorld({
    ...o,
    files: { "/c/ca.crt": TEST_CA_CERT_PEM, "/c/cert.crt": cert, "/c/cert.key": key },
    registry: fakeRegistry({
      getNetworkConfig: () => Promise.resolve(config()),
      getDh: () => Promise.resolve(TEST_DH_PEM),
    }),
  });
}

/**
 * Builds a fake world; `files` holds the identity files, `registry` answers, babeld shows
 * `snapshot`; `kernel` builds the recorder kernel (given the journal store in `files`).
 */
export function fakeWorld(o: {
  files: Record<string, string>;
  registry: FakeRegistry;
  upExit?: number;
  kernel?: (store: JournalStore) => RecorderKernel;
  snapshot?: BabelSnapshot;
}): FakeWorld {
  const files = new Map(Object.entries(o.files));
  const clock = manualClock(Date.now());
  const log = memoryLogger(4);
  const store = mapJournal(files);
  const kernel = o.kernel?.(store) ??
    createRecorderKernel({ loopbackLinkLocalRoute: true, store });
  const db = new DatabaseSync(":memory:");
  const babel = fakeBabelClient(o.snapshot);
  const w: FakeWorld = {
    kernel,
    clock,
    log,
    files,
    dirs: new Map(),
    removed: [],
    processes: [],
    babelConfigs: [],
    hookHandler: null,
    control: null,
    shellRuns: [],
    registry: o.registry,
    babel,
    sockets: [],
    db,
    parts: undefined as unknown as NodeParts,
  };
  const notFound = (path: string) =>
    Object.assign(new Error(`No such file: ${path}`), { name: "NotFound" });
  w.parts = {
    kernel,
    registry: () => o.registry,
    babel: {
      start(config) {
        w.babelConfigs.push({ args: config.args, configText: config.configText });
        const p = fakeProcess("babeld", config.args);
        w.processes.push(p);
        return Promise.resolve(p);
      },
      client: () => babel,
    },
    openvpn: {
      start(name, args) {
        const p = fakeProcess(`openvpn ${name}`, args);
        w.processes.push(p);
        return Promise.resolve(p);
      },
      writeHookScript: (path) => Promise.resolve(path),
      serveHooks(_socket, handler) {
        w.hookHandler = handler;
        return Promise.resolve({
          close() {
            w.hookHandler = null;
            return Promise.resolve();
          },
        });
      },
    },
    peerSocket(onDatagram, onError) {
      const s: FakeSocket = { onDatagram, onError, sent: [], closed: false };
      w.sockets.push(s);
      return {
        send(host, port, bytes) {
          s.sent.push({ host, port, bytes });
          return Promise.resolve();
        },
        close() {
          s.closed = true;
          return Promise.resolve();
        },
      };
    },
    shell: {
      run(cmd, env) {
        w.shellRuns.push({ cmd, env });
        return Promise.resolve(o.upExit ?? 0);
      },
      spawn(cmd, env) {
        w.shellRuns.push({ cmd, env });
        const p = fakeProcess(`sh ${cmd}`);
        w.processes.push(p);
        return p;
      },
    },
    files: {
      readFile(path) {
        const t = files.get(path);
        if (t === undefined) throw notFound(path);
        return new TextEncoder().encode(t);
      },
      readText: (path) => Promise.resolve(files.get(path) ?? null),
      exists: (path) => Promise.resolve(files.has(path)),
      writeText(path, text) {
        files.set(path, text);
        return Promise.resolve();
      },
      replaceText(path, text) {
        files.set(path, text);
        return Promise.resolve();
      },
      rename(from, to) {
        const t = files.get(from);
        if (t === undefined) return Promise.reject(notFound(from));
        files.delete(from);
        files.set(to, t);
        return Promise.resolve();
      },
      mkdir(path, mode) {
        w.dirs.set(path, mode);
        return Promise.resolve();
      },
      remove(path) {
        w.removed.push(path);
        for (const k of [...files.keys()]) {
          if (k === path || k.startsWith(path + "/")) files.delete(k);
        }
        return Promise.resolve();
      },
    },
    host: {
      pid: 4242,
      processName: () => Promise.resolve(null),
      processStart: () => Promise.resolve(null),
      listProcesses: () => Promise.resolve([]),
      kill: () => {},
      path: "/usr/sbin:/usr/bin:/sbin:/bin",
      memory: () => ({ rss: 50 << 20, heapUsed: 8 << 20, heapTotal: 10 << 20, external: 1 << 20 }),
    },
    openCache: () => openCache(db),
    serveControl(_path, handler) {
      w.control = handler;
      return Promise.resolve({
        close() {
          w.control = null;
          return Promise.resolve();
        },
      });
    },
    clock,
    log,
    random: () => 0.5,
  };
  return w;
}
