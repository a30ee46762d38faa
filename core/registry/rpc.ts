// HTTP side of the registry RPC (PROTOCOL.md §4.1–§4.5): target and query rules, private
// origins, HMAC sessions, status codes. Transport-independent: request in, response out.

import { unmapIpv4 } from "../addressing.ts";
import { HMAC_HEADER } from "../constants.ts";
import { describeError } from "../errors.ts";
import { HttpError } from "./errors.ts";
import { sourceKey } from "./limits.ts";
import { decodeMacHeader, encodeMacHeader, responseMac } from "./hmac.ts";
import { type CallInfo, type MethodContext, METHODS } from "./methods.ts";
import { BadTargetError, parseTarget } from "./query.ts";

/** Longest request-target accepted (a 4096-bit CSR needs about 3 KiB). */
export const MAX_TARGET_CHARS = 32768;

/** One HTTP request as the server received it. */
export interface RpcRequest {
  /** HTTP method ("GET", …). */
  httpMethod: string;
  /** Raw request-target: "/<method>?<query>" exactly as received. */
  target: string;
  /** Header lookup (case-insensitive). */
  header(name: string): string | null;
  /** TCP peer address (IPv4-mapped IPv6 addresses are accepted). */
  peerAddress: string;
}

/** The answer; `note` says why a request failed or what it gave (for the log line, never sent). */
export interface RpcResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | null;
  /** RPC method name when known (for logs). */
  method?: string;
  note?: string;
  /** Log the request at debug only (a refusal already reported). */
  quiet?: boolean;
}

const enc = new TextEncoder();

function fail(status: number, note: string, method?: string): RpcResponse {
  return { status, headers: {}, body: null, note: note.replace(/\s*\n\s*/g, " "), method };
}

/** `::ffff:a.b.c.d` → `a.b.c.d`; other addresses unchanged. */
export function normalizeAddress(addr: string): string {
  return unmapIpv4(addr).toLowerCase();
}

/**
 * The source a rate limit counts this request against, or null when it is exempt: the TCP
 * peer; for an authorized origin (the admin, a local reverse proxy) the last address of
 * X-Forwarded-For, which that proxy added, and no limit without one.
 */
export function rateSource(
  authorized: readonly string[],
  peer: string,
  forwardedFor: string | null,
): string | null {
  if (!isAuthorizedOrigin(authorized, peer, null)) return sourceKey(peer);
  const last = forwardedFor?.split(",").pop()?.trim();
  return last ? sourceKey(last) : null;
}

/** Whether a private method may be called by this request (§4.4). */
export function isAuthorizedOrigin(
  authorized: readonly string[],
  peer: string,
  forwardedFor: string | null,
): boolean {
  const ok = new Set(authorized.map(normalizeAddress));
  if (!ok.has(normalizeAddress(peer))) return false;
  return forwardedFor === null || ok.has(normalizeAddress(forwardedFor));
}

function decodeMac(text: string | null): Uint8Array | null {
  const mac = decodeMacHeader(text);
  return mac?.length === 20 ? mac : null;
}

/** A 429 answer when the request's source is over the rate limit, else null. */
function checkRate(ctx: MethodContext, req: RpcRequest, name: string): RpcResponse | null {
  const r = ctx.registry;
  const source = rateSource(
    r.config.authorizedOrigin,
    req.peerAddress,
    req.header("X-Forwarded-For"),
  );
  if (source === null) return null;
  const verdict = ctx.limiter.take(source, r.clock.now());
  if (verdict.ok) return null;
  return {
    ...fail(
      429,
      `${source} is over the limit of ${ctx.limiter.perMinute} certificate and token ` +
        "requests per minute (said once a minute; later refusals at debug)",
      name,
    ),
    headers: { "Retry-After": "60" },
    quiet: !verdict.report,
  };
}

/**
 * 403 to a private method from elsewhere (§4.4), saying in its body, for the admin, which
 * address the registry saw and which it accepts.
 */
function originRefusal(
  method: string,
  peer: string,
  forwardedFor: string | null,
  authorized: readonly string[],
): RpcResponse {
  // The header is the client's own text: printable ASCII, bounded.
  const xff = forwardedFor?.replace(/[^\x20-\x7e]/g, "?").slice(0, 100) ?? null;
  const seen = normalizeAddress(peer) + (xff === null ? "" : ` (X-Forwarded-For: ${xff})`);
  const reason = `private method ${method} called from ${seen}; this registry accepts ` +
    `private methods only from ${authorized.join(", ")} (--authorized-origin)` +
    (xff === null ? "" : ", the X-Forwarded-For address included");
  return withReason(fail(403, `private method from ${seen}`, method), reason);
}

/** A refusal that tells the client why in a line of text (403s: `re6st admin` shows it). */
function withReason(res: RpcResponse, reason: string): RpcResponse {
  return {
    ...res,
    headers: { ...res.headers, "Content-Type": "text/plain; charset=utf-8" },
    body: enc.encode(reason + "\n"),
  };
}

/** Handles one registry request; never throws. */
export async function handleRpc(ctx: MethodContext, req: RpcRequest): Promise<RpcResponse> {
  if (req.httpMethod !== "GET") return fail(501, `unsupported method ${req.httpMethod}`);
  if (req.target.length > MAX_TARGET_CHARS) {
    return fail(414, `request target of ${req.target.length} characters`);
  }
  let parsed;
  try {
    parsed = parseTarget(req.target);
  } catch (e) {
    if (e instanceof BadTargetError) return fail(400, describeError(e));
    throw e;
  }
  const name = parsed.method;
  const spec = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined;
  if (!spec) return fail(400, `unknown method ${JSON.stringify(name.slice(0, 64))}`);
  const params: Record<string, string> = { ...spec.defaults };
  for (const [k, v] of parsed.params) {
    if (!spec.params.includes(k)) {
      return fail(400, `unexpected parameter ${JSON.stringify(k.slice(0, 64))}`, name);
    }
    params[k] = v;
  }
  const missing = spec.params.filter((k) => !(k in params));
  if (missing.length) return fail(400, `missing parameter ${missing.join(", ")}`, name);
  if (spec.rateLimited) {
    const limited = checkRate(ctx, req, name);
    if (limited) return limited;
  }
  if (spec.private) {
    const xff = req.header("X-Forwarded-For");
    const authorized = ctx.registry.config.authorizedOrigin;
    if (!isAuthorizedOrigin(authorized, req.peerAddress, xff)) {
      return originRefusal(name, req.peerAddress, xff, authorized);
    }
  }
  if ("ip" in params && params.ip === "") {
    // Quirk Q4: the client as the proxy saw it, else the TCP peer (not the Host header).
    const xff = req.header("X-Forwarded-For")?.split(",")[0].trim();
    params.ip = xff || normalizeAddress(req.peerAddress);
  }
  const call: CallInfo = { protocol: 1 };
  let responseKey: Uint8Array | null = null;
  if ("cn" in params) {
    const mac = decodeMac(req.header(HMAC_HEADER));
    if (!mac) return fail(400, `missing or malformed ${HMAC_HEADER} header`, name);
    const checked = ctx.registry.sessions.check(params.cn, req.target, mac);
    if (!checked.ok) {
      return fail(
        checked.status,
        checked.status === 401 ? `no session for ${params.cn}` : `wrong HMAC for ${params.cn}`,
        name,
      );
    }
    responseKey = checked.responseKey;
    call.protocol = checked.protocol;
    call.node = ctx.registry.certs.get(params.cn);
    if (!call.node) return fail(404, `no certificate for ${params.cn}`, name);
  }
  let body: Uint8Array;
  let type: string | undefined;
  let note: string | undefined;
  try {
    const result = await spec.run(ctx, params, call);
    body = typeof result.body === "string"
      ? enc.encode(result.body)
      : result.body ?? new Uint8Array();
    type = result.type;
    note = result.note;
  } catch (e) {
    if (e instanceof HttpError) {
      const res = fail(e.status, describeError(e), name);
      return e.status === 403 ? withReason(res, e.message) : res;
    }
    return fail(500, `internal error: ${describeError(e)}`, name);
  }
  const headers: Record<string, string> = {};
  if (body.length && type) headers["Content-Type"] = type;
  if (responseKey) headers[HMAC_HEADER] = encodeMacHeader(responseMac(responseKey, body));
  return {
    status: body.length ? 200 : 204,
    headers,
    body: body.length ? body : null,
    method: name,
    ...(note ? { note } : {}),
  };
}
