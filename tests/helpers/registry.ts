// Registry test fixtures: a CA on disk, node keys and CSRs, a minimal HMAC session client
// written from PROTOCOL.md §4.3 (independent of core/registry/client.ts), an in-process
// registry without HTTP.

import { createCa, createCsr, type SubjectEntry } from "../../core/cert.ts";
import {
  generateRsaKey,
  hmacSha1,
  loadPrivateKey,
  type PrivateKey,
  rsaDecrypt,
  rsaVerify,
  sha1,
} from "../../core/crypto.ts";
import { memoryLogger } from "../../core/log.ts";
import { DatabaseSync } from "node:sqlite";
import type { RegistryConfig } from "../../core/registry/config.ts";
import { type DbOptions, type RegistryDb, registryDb } from "../../core/registry/db.ts";
import { RateLimiter } from "../../core/registry/limits.ts";
import type { MethodContext } from "../../core/registry/methods.ts";
import { Registry, type RegistryDeps } from "../../core/registry/registry.ts";
import type { Clock } from "../../core/clock.ts";
import { BootstrapCandidates, NO_ROUTES, Relay } from "../../core/registry/relay.ts";
import { handleRpc, type RpcResponse } from "../../core/registry/rpc.ts";
import { TEST_CA_CERT_PEM, TEST_CA_KEY_PEM } from "./vectors.ts";

/** Network of the VECTORS.md §8 test CA: 2001:db8:42::/48. */
export const VECTOR_NETWORK = "001000000000000100001101101110000000000001000010";

/** The registry database at `path` (":memory:" by default), opened as platform/ does. */
export function openDb(path = ":memory:", opts: DbOptions = {}): RegistryDb {
  return registryDb(new DatabaseSync(path), path, opts);
}

/** Files of a registry in a temporary directory. */
export interface RegistryFiles {
  dir: string;
  caPem: string;
  keyPem: string;
  /** Config pointing at those files (db in dir), listening on 127.0.0.1 only, port 0. */
  config: RegistryConfig;
  cleanup(): Promise<void>;
}

/**
 * Writes a CA (the VECTORS.md §8 one by default, or a fresh 1024-bit one for `network`) and
 * returns a registry config using it; `extra` overrides options.
 */
export async function registryFiles(
  extra: Partial<RegistryConfig> = {},
  opts: { network?: string; email?: string } = {},
): Promise<RegistryFiles> {
  const dir = await Deno.makeTempDir({ prefix: "re6st-registry-test-" });
  let caPem = TEST_CA_CERT_PEM, keyPem = TEST_CA_KEY_PEM;
  if (opts.network !== undefined && opts.network !== VECTOR_NETWORK || opts.email) {
    ({ certPem: caPem, keyPem } = await createCa({
      network: opts.network ?? VECTOR_NETWORK,
      keyPem: TEST_CA_KEY_PEM,
      email: opts.email,
      notBefore: new Date(Date.now() - 86400_000),
    }));
  }
  await Deno.writeTextFile(`${dir}/ca.crt`, caPem);
  await Deno.writeTextFile(`${dir}/ca.key`, keyPem, { mode: 0o600 });
  return {
    dir,
    caPem,
    keyPem,
    config: {
      ca: `${dir}/ca.crt`,
      key: `${dir}/ca.key`,
      db: `${dir}/registry.db`,
      port: 0,
      ipv4Bind: "127.0.0.1",
      ipv6Bind: "",
      anonymousPrefixLength: 16,
      logfile: `${dir}/registry.log`,
      run: dir,
      ...extra,
    },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

const keys: Promise<string>[] = [];

/** A 1024-bit node key PEM, generated once per index and reused. TEST ONLY. */
export function nodeKeyPem(i = 0): Promise<string> {
  keys[i] ??= generateRsaKey(1024);
  return keys[i];
}

/** A node key and CSR with `subject`. */
export async function nodeCsr(
  i = 0,
  subject: SubjectEntry[] = [],
): Promise<{ key: PrivateKey; keyPem: string; csr: string }> {
  const keyPem = await nodeKeyPem(i);
  return { keyPem, key: loadPrivateKey(keyPem), csr: createCsr(keyPem, subject) };
}

/** Python quote_plus of a value (PROTOCOL §4.1). */
export function q(text: string): string {
  return encodeURIComponent(text).replace(/%20/g, "+").replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/** A request target with parameters in order. */
export function target(method: string, params: [string, string][] = []): string {
  return "/" + method +
    (params.length ? "?" + params.map(([k, v]) => `${k}=${q(v)}`).join("&") : "");
}

/** Minimal HMAC session client of §4.3, over any `send(target, headers)` transport. */
export class TestSession {
  key: Uint8Array | null = null;
  constructor(
    readonly prefix: string,
    /** The node's key, or something that decrypts with it (e.g. through libcrypto). */
    readonly nodeKey: PrivateKey | { decrypt(data: Uint8Array): Uint8Array },
    readonly caPem: string,
    readonly send: (
      target: string,
      headers: Record<string, string>,
    ) => Promise<{ status: number; body: Uint8Array; headers: Headers | Record<string, string> }>,
    /** Checks the CA's signature of a hello answer (default: node:crypto with `caPem`). */
    readonly verify: (e: Uint8Array, s: Uint8Array) => boolean = (e, s) => rsaVerify(caPem, e, s),
  ) {}

  /** Runs hello and stores the decrypted secret; returns the HTTP status. */
  async hello(protocol = 10): Promise<number> {
    const r = await this.send(
      target("hello", [["client_prefix", this.prefix], ["protocol", String(protocol)]]),
      {},
    );
    if (r.status !== 200) return r.status;
    const half = r.body.length / 2;
    const e = r.body.subarray(0, half), s = r.body.subarray(half);
    if (!this.verify(e, s)) throw new Error("hello signature does not verify");
    const k = this.nodeKey;
    this.key = "decrypt" in k ? k.decrypt(e) : rsaDecrypt(k, e);
    return r.status;
  }

  /** Signs and sends an authenticated call; `macOk` tells whether the response MAC verified. */
  async call(
    method: string,
    params: [string, string][] = [],
  ): Promise<{ status: number; body: Uint8Array; macOk: boolean; target: string; mac: string }> {
    if (!this.key) throw new Error("no session");
    const t = target(method, [["cn", this.prefix], ...params]);
    const mac = b64(hmacSha1(this.key, t));
    return await this.sendSigned(t, mac);
  }

  /** Sends `t` with the given MAC header, advancing the local chain like a client does. */
  async sendSigned(t: string, mac: string) {
    const key = this.key!;
    const k1 = sha1(key);
    this.key = sha1(k1);
    const r = await this.send(t, { Re6stHMAC: mac });
    const got = r.headers instanceof Headers ? r.headers.get("Re6stHMAC") : r.headers.Re6stHMAC;
    return {
      status: r.status,
      body: r.body,
      macOk: got === b64(hmacSha1(k1, r.body)),
      target: t,
      mac,
    };
  }
}

/** Standard base64. */
export function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** An in-process registry answering RPCs without HTTP (unit tests). */
export interface LocalRegistry {
  registry: Registry;
  ctx: MethodContext;
  log: ReturnType<typeof memoryLogger>;
  /** Calls the RPC handler as if from `peer` (default 127.0.0.1). */
  rpc(
    target: string,
    headers?: Record<string, string>,
    peer?: string,
    httpMethod?: string,
  ): Promise<RpcResponse & { bodyBytes: Uint8Array }>;
  close(): Promise<void>;
}

/** Opens a Registry on `files` with a memory logger, a manual clock and no relay socket. */
export function localRegistry(
  files: RegistryFiles,
  opts: {
    clock?: Clock;
    communities?: string;
    geoip?: MethodContext["geoip"];
    rsa?: RegistryDeps["rsa"];
  } = {},
): LocalRegistry {
  const log = memoryLogger(3);
  const registry = Registry.open(
    files.config,
    {
      caPem: files.caPem,
      keyPem: files.keyPem,
      dhPem: null,
      communities: opts.communities ? { text: opts.communities, source: "test" } : undefined,
    },
    openDb(files.config.db),
    { clock: opts.clock, log, rsa: opts.rsa },
  );
  const relay = new Relay(null, log, { timeoutMs: 50 });
  const ctx: MethodContext = {
    registry,
    relay,
    routes: NO_ROUTES,
    bootstrap: new BootstrapCandidates(NO_ROUTES, () => registry.clock.now()),
    mailer: null,
    geoip: opts.geoip ?? null,
    changed: () => {},
    durable: () => Promise.resolve(),
    limiter: new RateLimiter(registry.config.rateLimit),
  };
  return {
    registry,
    ctx,
    log,
    async rpc(t, headers = {}, peer = "127.0.0.1", httpMethod = "GET") {
      const h = new Headers(headers);
      const res = await handleRpc(ctx, {
        httpMethod,
        target: t,
        header: (n) => h.get(n),
        peerAddress: peer,
      });
      return { ...res, bodyBytes: res.body ?? new Uint8Array() };
    },
    async close() {
      await relay.close();
      registry.close();
    },
  };
}

/** A TestSession talking to a LocalRegistry. */
export function localSession(
  local: LocalRegistry,
  prefix: string,
  key: PrivateKey,
  caPem: string,
): TestSession {
  return new TestSession(prefix, key, caPem, async (t, headers) => {
    const r = await local.rpc(t, headers);
    return { status: r.status, body: r.bodyBytes, headers: r.headers };
  });
}
