// The registry RPC methods (PROTOCOL.md §4.6): parameters, flags and implementations.

import { type Bits, cnFromPrefix, ipFromBits, stripCountry } from "../addressing.ts";
import { randomSecret } from "../crypto.ts";
import { PENDING } from "./allocation.ts";
import { type GeoIp, renewCertificate, requestCertificate, revoke } from "./certificates.ts";
import { HttpError } from "./errors.ts";
import type { RateLimiter } from "./limits.ts";
import { isMailAddress, type Mailer, tokenMessage } from "./mail.ts";
import { pythonJson } from "./netconfig.ts";
import type { CertInfo, Registry } from "./registry.ts";
import type { RsaEngine } from "./rsa.ts";
import {
  type BootstrapCandidates,
  CODE,
  collectTopology,
  collectVersions,
  type Relay,
  type RoutingView,
} from "./relay.ts";
import { deleteToken, findToken, insertToken, TokenExistsError } from "./tokens.ts";

/** Everything a method may use. */
export interface MethodContext {
  registry: Registry;
  relay: Relay;
  routes: RoutingView;
  bootstrap: BootstrapCandidates;
  mailer: Mailer | null;
  geoip: GeoIp | null;
  /** Called after a change of tokens or certificates (reschedules the clean-up). */
  changed(): void;
  /** Resolves once every committed change is on disk (called before answering a write). */
  durable(): Promise<void>;
  /** Per-source limit of the methods marked `rateLimited`. */
  limiter: RateLimiter;
}

/** What a method returns: a body (200) or null (204), with its media type. */
export interface MethodResult {
  body: Uint8Array | string | null;
  type?: string;
  /** Added to the request's log line, never sent. */
  note?: string;
}

/** Per-call data besides the parameters. */
export interface CallInfo {
  /** Session protocol of an authenticated call (§4.3). */
  protocol: number;
  /** Certificate of the calling node (authenticated methods). */
  node?: CertInfo;
}

/** A method: parameter names in client order with defaults, flags and implementation. */
export interface MethodSpec {
  params: readonly string[];
  defaults?: Record<string, string>;
  private?: boolean;
  /** Counted against the per-source rate limit (--rate-limit). */
  rateLimited?: boolean;
  run(ctx: MethodContext, p: Record<string, string>, call: CallInfo): Promise<MethodResult>;
}

const TEXT = "text/plain; charset=utf-8";
const BINARY = "application/octet-stream";
const JSON_TYPE = "application/json";
const none: MethodResult = { body: null };
const text = (body: string | null): MethodResult => ({ body: body || null, type: TEXT });

async function afterBump(ctx: MethodContext): Promise<void> {
  const prefix = ctx.registry.registryPrefix;
  if (prefix !== null) await ctx.relay.notifyNewVersion(prefix);
}

function certByEmail(r: Registry, email: string): Bits | null {
  const row = r.db.prepare(
    "SELECT prefix FROM cert WHERE email = ? AND cert IS NOT NULL AND cert != ? LIMIT 1",
  ).get(email, PENDING) as { prefix: string } | undefined;
  return row?.prefix ?? null;
}

function checkEmail(email: string): void {
  if (!isMailAddress(email)) {
    throw new HttpError(400, `invalid e-mail address ${JSON.stringify(email.slice(0, 300))}`);
  }
}

/** Tokens given by an administrator: not empty, no control character or space (§5.5). */
function checkToken(token: string): void {
  if (!/^[\x21-\x7e]{1,64}$/.test(token)) {
    throw new HttpError(400, `invalid token ${JSON.stringify(token.slice(0, 100))}`);
  }
}

function requireTokens(r: Registry): void {
  if (!r.config.prefixLength) throw new HttpError(403, "registration by e-mail is disabled");
}

/** Encrypts `"<prefix> <addresses>"` for `node`, dropping trailing addresses to fit (Q8). */
export function bootstrapAnswer(
  rsa: RsaEngine,
  node: CertInfo,
  prefix: Bits,
  addresses: string,
): Uint8Array {
  const room = Math.ceil(rsa.keyBits(node.spki) / 8) - 11;
  const entries = addresses ? addresses.split(";") : [];
  const enc = new TextEncoder();
  for (let n = entries.length; n >= 0; n--) {
    const plain = enc.encode(`${prefix} ${entries.slice(0, n).join(";")}`);
    if (plain.length <= room) return rsa.encrypt(node.spki, plain);
  }
  throw new Error(`Prefix ${prefix} does not fit in a ${room + 11}-byte RSA block`);
}

/** The method table of §4.6. */
export const METHODS: Record<string, MethodSpec> = {
  hello: {
    params: ["client_prefix", "protocol"],
    defaults: { protocol: "1" },
    async run(ctx, p) {
      const r = ctx.registry;
      if (!/^\d{1,9}$/.test(p.protocol)) throw new HttpError(400, "invalid protocol number");
      const info = r.certs.get(p.client_prefix);
      if (!info) throw new HttpError(404, `no certificate for prefix ${p.client_prefix}`);
      const secret = randomSecret();
      const e = r.rsa.encrypt(info.spki, secret);
      const s = await r.sign(e);
      if (e.length !== s.length) {
        throw new Error(`key size of ${cnFromPrefix(info.prefix)} differs from the CA's`);
      }
      r.sessions.hello(info.prefix, secret, Number(p.protocol));
      const body = new Uint8Array(e.length * 2);
      body.set(e);
      body.set(s, e.length);
      return { body, type: BINARY };
    },
  },
  getCa: {
    params: [],
    run: (ctx) => Promise.resolve(text(ctx.registry.ca.pem)),
  },
  getDh: {
    params: ["cn"],
    run: (ctx) => Promise.resolve(text(ctx.registry.dhPem)),
  },
  getNetworkConfig: {
    params: ["cn"],
    run: (ctx, _p, call) =>
      Promise.resolve({ body: ctx.registry.networkConfigFor(call.node!), type: BINARY }),
  },
  requestToken: {
    params: ["email"],
    rateLimited: true,
    async run(ctx, p) {
      const r = ctx.registry;
      if (!ctx.mailer) throw new HttpError(403, "mail is disabled (no --mailhost)");
      requireTokens(r);
      checkEmail(p.email);
      const token = await r.exclusive(() =>
        r.db.tx(() => insertToken(r.db, null, p.email, r.config.prefixLength, r.nowS()))
      );
      try {
        await ctx.durable();
        await ctx.mailer.send(tokenMessage(r.caEmail, p.email, token));
      } catch (e) {
        await r.exclusive(() => r.db.tx(() => deleteToken(r.db, token)));
        throw e;
      }
      r.log.info(`Token mailed to ${p.email}`);
      ctx.changed();
      return none;
    },
  },
  requestCertificate: {
    params: ["token", "req", "location", "ip"],
    defaults: { location: "", ip: "" },
    rateLimited: true,
    async run(ctx, p) {
      const issued = await requestCertificate(
        ctx.registry,
        { token: p.token, req: p.req, location: p.location, ip: p.ip },
        ctx.geoip,
      );
      if (!issued) return none;
      ctx.changed();
      await ctx.durable();
      if (issued.bumped) await afterBump(ctx);
      return text(issued.pem);
    },
  },
  renewCertificate: {
    params: ["cn"],
    async run(ctx, _p, call) {
      const pem = await renewCertificate(ctx.registry, call.node!.prefix);
      if (pem !== call.node!.pem) {
        ctx.changed();
        await ctx.durable();
      }
      return text(pem);
    },
  },
  getBootstrapPeer: {
    params: ["cn"],
    async run(ctx, _p, call) {
      const r = ctx.registry;
      const own = r.registryPrefix;
      if (own === null) return none;
      let prefix = await ctx.bootstrap.next(own, call.node!.prefix);
      if (prefix === call.node!.prefix) prefix = own;
      // The log line names the node offered and how many were reachable (§5.8), and why
      // there is only the registry's own node when its babeld cannot be read.
      const n = ctx.bootstrap.size;
      const health = ctx.routes.health?.();
      const blind = health && !health.reachable ? `; cannot read routes from ${health.source}` : "";
      const of = `${cnFromPrefix(prefix)} (${n} candidate${n === 1 ? "" : "s"}${blind})`;
      const answer = await ctx.relay.query(prefix, CODE.ADDRESS);
      if (answer === null) return { body: null, note: `no address list from ${of}` };
      let addresses = new TextDecoder().decode(answer);
      if (call.protocol < 7) addresses = stripCountry(addresses);
      return {
        body: bootstrapAnswer(r.rsa, call.node!, prefix, addresses),
        type: BINARY,
        note: `offered ${of}`,
      };
    },
  },
  getCountry: {
    params: ["cn", "address"],
    run(ctx, p) {
      if (!ctx.geoip) throw new HttpError(400, "no GeoIP database");
      return Promise.resolve(text(ctx.geoip.lookup(p.address)?.country ?? null));
    },
  },
  revoke: {
    params: ["cn_or_serial"],
    private: true,
    async run(ctx, p) {
      const bumped = await revoke(ctx.registry, p.cn_or_serial);
      ctx.changed();
      await ctx.durable();
      if (bumped) await afterBump(ctx);
      return none;
    },
  },
  addToken: {
    params: ["email", "token"],
    private: true,
    async run(ctx, p) {
      const r = ctx.registry;
      requireTokens(r);
      checkEmail(p.email);
      checkToken(p.token);
      try {
        await r.exclusive(() =>
          r.db.tx(() => insertToken(r.db, p.token, p.email, r.config.prefixLength, r.nowS()))
        );
      } catch (e) {
        if (e instanceof TokenExistsError) throw new HttpError(409, "token already exists");
        throw e;
      }
      ctx.changed();
      await ctx.durable();
      return none;
    },
  },
  isToken: {
    params: ["token"],
    private: true,
    run: (ctx, p) => Promise.resolve(text(findToken(ctx.registry.db, p.token) ? "1" : null)),
  },
  deleteToken: {
    params: ["token"],
    private: true,
    async run(ctx, p) {
      const r = ctx.registry;
      await r.exclusive(() => r.db.tx(() => deleteToken(r.db, p.token)));
      await ctx.durable();
      return none;
    },
  },
  updateHMAC: {
    params: [],
    private: true,
    async run(ctx) {
      await ctx.registry.exclusive(() => ctx.registry.updateHMAC());
      await ctx.durable();
      ctx.registry.log.info(`Babel keys rotated: version ${ctx.registry.versionNumber()}`);
      await afterBump(ctx);
      return none;
    },
  },
  getNodePrefix: {
    params: ["email"],
    private: true,
    run(ctx, p) {
      const prefix = certByEmail(ctx.registry, p.email);
      return Promise.resolve(text(prefix === null ? null : cnFromPrefix(prefix)));
    },
  },
  getIPv6Address: {
    params: ["email"],
    private: true,
    run(ctx, p) {
      const prefix = certByEmail(ctx.registry, p.email);
      return Promise.resolve(
        text(prefix === null ? null : ipFromBits(ctx.registry.network + prefix)),
      );
    },
  },
  getIPv4Information: {
    params: ["email"],
    private: true,
    async run(ctx, p) {
      const prefix = certByEmail(ctx.registry, p.email);
      if (prefix === null) return none;
      const answer = await ctx.relay.query(prefix, CODE.ADDRESS);
      if (answer === null) return none;
      return text(new TextDecoder().decode(answer).split(";")[0].split(",")[0]);
    },
  },
  health: {
    // Our extension (not in the reference): what `re6st status --registry` checks.
    params: [],
    private: true,
    run(ctx) {
      const h = ctx.routes.health?.() ?? { source: "(none)", reachable: true, problem: null };
      const body = { babel: h, bootstrapCandidates: ctx.bootstrap.size };
      return Promise.resolve({ body: JSON.stringify(body), type: JSON_TYPE });
    },
  },
  versions: {
    params: [],
    private: true,
    async run(ctx) {
      const r = ctx.registry;
      const prefixes = new Set(await ctx.routes.reachablePrefixes());
      if (r.registryPrefix !== null) prefixes.add(r.registryPrefix);
      const out = await collectVersions(ctx.relay, [...prefixes]);
      return { body: pythonJson(out), type: JSON_TYPE };
    },
  },
  topology: {
    params: [],
    private: true,
    async run(ctx) {
      const r = ctx.registry;
      const own = r.registryPrefix;
      const out = own === null ? { "": [] } : await collectTopology(ctx.relay, own, r.log);
      return { body: pythonJson(out), type: JSON_TYPE };
    },
  },
};
