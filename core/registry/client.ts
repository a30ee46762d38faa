// Registry HTTP RPC client (PROTOCOL.md §4): request encoding, the HMAC session of §4.3,
// and one typed method per RPC of §4.6. Used by the node and by `re6st conf`.

import { describeError } from "../errors.ts";
import {
  HMAC_HEADER,
  HTTP_TIMEOUT_S,
  platformString,
  PROTOCOL_VERSION,
  SOFTWARE_VERSION,
} from "../constants.ts";
import type { Bits } from "../addressing.ts";
import { requestTarget } from "./query.ts";
import {
  bytesEqual,
  hmacSha1,
  type PrivateKeyInput,
  type PublicKeyInput,
  rsaDecrypt,
  rsaVerify,
  sha1,
} from "../crypto.ts";

/** Something that can send an HTTP request: the global `fetch` or a fake. */
export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** The node's side of an authenticated session (§4.3.1): its prefix and the keys it needs. */
export interface SessionIdentity {
  /** Own node prefix (bit-string): the `cn` of authenticated calls. */
  prefix: Bits;
  /** Node private key: decrypts session secrets and bootstrap answers. */
  key: PrivateKeyInput;
  /** CA certificate PEM or public key: checks the registry's signature on session secrets. */
  ca: PublicKeyInput;
}

/** How a RegistryClient talks to its registry. */
export interface RegistryClientOptions {
  /** Needed for authenticated methods (getDh, getNetworkConfig, renewCertificate, …). */
  identity?: SessionIdentity;
  /** HTTP implementation; defaults to the global fetch. */
  fetch?: FetchFn;
  /** Per-request deadline, connection to last body byte; defaults to 60 s (§4.1). */
  timeoutMs?: number;
  /** Platform part of the User-Agent; defaults to the OS and CPU Deno was built for. */
  platform?: string;
}

/** The answer of the registry's `health` method (our extension). */
export interface RegistryHealth {
  babel: { source: string; reachable: boolean; problem: string | null };
  /** Nodes getBootstrapPeer chose from last time (its own node included). */
  bootstrapCandidates: number;
}

/** A registry call that gave no usable result; names the registry URL and the method. */
export class RegistryError extends Error {
  override name = "RegistryError";
  constructor(
    readonly url: string,
    readonly method: string,
    detail: string,
    /** HTTP status of the last answer, when there was one. */
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(`Registry ${url} ${method}: ${detail}`, options);
  }
}

/** The registry answered 403: private method from elsewhere, or registration disabled. */
export class RegistryForbiddenError extends RegistryError {
  override name = "RegistryForbiddenError";
  constructor(
    url: string,
    method: string,
    /** Why, as the registry said it in its answer (this implementation does), if it did. */
    readonly reason: string | null = null,
  ) {
    super(url, method, `forbidden (HTTP 403)${reason ? `: ${reason}` : ""}`, 403);
  }
}

/** The first line of an error answer's text, when it is short plain text; else null. */
export function errorReason(body: Uint8Array): string | null {
  if (!body.length || body.length > 1024) return null;
  const line = new TextDecoder().decode(body).split("\n")[0].trim();
  // Printable text only: not an HTML error page, nothing that could move the terminal.
  return line && /^[\x20-\x7e]+$/.test(line) && !line.includes("<") ? line : null;
}

/** Bootstrap peer announced by the registry (§7.3). */
export interface BootstrapPeer {
  prefix: Bits;
  /** Address list text (§1.5), possibly empty. */
  addresses: string;
}

/** User-Agent sent to the registry: `re6stnet/<version>, <platform>` (§4.1). */
export function userAgent(platform = platformString()): string {
  return `re6stnet/${SOFTWARE_VERSION}, ${platform}`;
}

export { platformString };

/** The most specific reason of a fetch failure ("Connection refused", not "fetch failed"). */
function failureReason(e: unknown): string {
  let reason = e instanceof Error ? e.message : String(e);
  let inner = e instanceof Error ? e.cause : undefined;
  while (inner instanceof Error) {
    reason = inner.message.replace(/^.*: client error \((\w+)\): /, "");
    inner = inner.cause;
  }
  return reason;
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function fromB64(value: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

interface Answer {
  status: number;
  body: Uint8Array;
  mac: string | null;
}

/** Client of one registry; authenticated calls share one HMAC session and run one at a time. */
export class RegistryClient {
  /** Registry URL as given, used in error messages. */
  readonly url: string;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #identity?: SessionIdentity;
  readonly #fetch: FetchFn;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  #key: Uint8Array | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(url: string, opts: RegistryClientOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (cause) {
      throw new RegistryError(url, "-", "not a valid URL", undefined, { cause });
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new RegistryError(url, "-", "only http:// and https:// URLs are supported");
    }
    this.url = url;
    this.#origin = parsed.origin;
    this.#basePath = parsed.pathname.replace(/\/+$/, "");
    this.#identity = opts.identity;
    this.#fetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.#timeoutMs = opts.timeoutMs ?? HTTP_TIMEOUT_S * 1000;
    this.#userAgent = userAgent(opts.platform);
  }

  /** Forgets the session key; the next authenticated call starts with a new hello. */
  resetSession(): void {
    this.#key = null;
  }

  // --- Public methods ---

  /** The CA certificate, PEM text. */
  async getCa(): Promise<string> {
    return text(await this.#plain("getCa", []));
  }

  /** Raw `hello` answer E‖S for `prefix` (§4.3.1). */
  hello(prefix: Bits, protocol: number = PROTOCOL_VERSION): Promise<Uint8Array> {
    return this.#plain("hello", [["client_prefix", prefix], ["protocol", String(protocol)]]);
  }

  /** Asks the registry to mail a token to `email`. */
  async requestToken(email: string): Promise<void> {
    await this.#plain("requestToken", [["email", email]]);
  }

  /** Certificate PEM for a CSR, or null when the token is unknown or already used. */
  async requestCertificate(
    token: string,
    csrPem: string,
    location = "",
    ip = "",
  ): Promise<string | null> {
    const params: [string, string][] = [
      ["token", token],
      ["req", csrPem],
      ["location", location],
      ["ip", ip],
    ];
    return orNull(text(await this.#plain("requestCertificate", params)));
  }

  // --- Authenticated methods (§4.3) ---

  /** DH parameters (PEM) served by the registry. */
  async getDh(): Promise<string> {
    return text(await this.#auth("getDh", []));
  }

  /** Network configuration document as sent: zlib-compressed JSON (§4.7). */
  getNetworkConfig(): Promise<Uint8Array> {
    return this.#auth("getNetworkConfig", []);
  }

  /** Renewed (or unchanged) certificate PEM, or null when the registry returned nothing. */
  async renewCertificate(): Promise<string | null> {
    return orNull(text(await this.#auth("renewCertificate", [])));
  }

  /** A peer to bootstrap from, or null when the registry knows none right now (§7.3). */
  async getBootstrapPeer(): Promise<BootstrapPeer | null> {
    const body = await this.#auth("getBootstrapPeer", []);
    if (!body.length) return null;
    let plain: string;
    try {
      plain = text(rsaDecrypt(this.#identityOrThrow("getBootstrapPeer").key, body));
    } catch (cause) {
      throw new RegistryError(this.url, "getBootstrapPeer", "cannot decrypt the answer", 200, {
        cause,
      });
    }
    const space = plain.indexOf(" ");
    const prefix = space < 0 ? plain : plain.slice(0, space);
    if (!/^[01]+$/.test(prefix)) {
      throw new RegistryError(this.url, "getBootstrapPeer", "answer holds no valid prefix");
    }
    return { prefix, addresses: space < 0 ? "" : plain.slice(space + 1) };
  }

  /** ISO country code of `address` by the registry's GeoIP, or null when unknown. */
  async getCountry(address: string): Promise<string | null> {
    return orNull(text(await this.#auth("getCountry", [["address", address]])));
  }

  // --- Private methods (§4.4), only from authorized origins ---

  /** Revokes a certificate by serial (decimal text) or by CN form `V/L`. */
  async revoke(cnOrSerial: string): Promise<void> {
    await this.#plain("revoke", [["cn_or_serial", cnOrSerial]]);
  }

  /** Stores `token` for `email` (HTTP 409 if it exists). */
  async addToken(email: string, token: string): Promise<void> {
    await this.#plain("addToken", [["email", email], ["token", token]]);
  }

  /** Whether `token` is stored. */
  async isToken(token: string): Promise<boolean> {
    return text(await this.#plain("isToken", [["token", token]])) !== "";
  }

  /** Deletes `token`. */
  async deleteToken(token: string): Promise<void> {
    await this.#plain("deleteToken", [["token", token]]);
  }

  /** Advances the Babel HMAC key rotation (§4.9). */
  async updateHMAC(): Promise<void> {
    await this.#plain("updateHMAC", []);
  }

  /** CN form of a certificate registered with `email`, or null. */
  async getNodePrefix(email: string): Promise<string | null> {
    return orNull(text(await this.#plain("getNodePrefix", [["email", email]])));
  }

  /** Subnet address of the node registered with `email`, or null. */
  async getIPv6Address(email: string): Promise<string | null> {
    return orNull(text(await this.#plain("getIPv6Address", [["email", email]])));
  }

  /** First advertised IP of the node registered with `email`, or null. */
  async getIPv4Information(email: string): Promise<string | null> {
    return orNull(text(await this.#plain("getIPv4Information", [["email", email]])));
  }

  /** Software version of each node, by prefix bit-string (null: no answer). */
  versions(): Promise<Record<string, string | null>> {
    return this.#json("versions") as Promise<Record<string, string | null>>;
  }

  /** Tunnel graph by CN form; the key "" lists the nodes that answered. */
  topology(): Promise<Record<string, string[]>> {
    return this.#json("topology") as Promise<Record<string, string[]>>;
  }

  /**
   * How the registry reads its node's routes (our extension); null from a registry without
   * the method (the reference answers 400).
   */
  async health(): Promise<RegistryHealth | null> {
    try {
      return await this.#json("health") as RegistryHealth;
    } catch (e) {
      if (e instanceof RegistryError && e.status === 400) return null;
      throw e;
    }
  }

  // --- Plumbing ---

  async #json(method: string): Promise<unknown> {
    const body = text(await this.#plain(method, []));
    try {
      return body === "" ? {} : JSON.parse(body);
    } catch (cause) {
      throw new RegistryError(this.url, method, "answer is not JSON", 200, { cause });
    }
  }

  /** An unauthenticated call: the body of a 200/204 answer, else a RegistryError. */
  async #plain(method: string, params: [string, string][]): Promise<Uint8Array> {
    const answer = await this.#send(method, requestTarget(method, params), {});
    if (answer.status === 200 || answer.status === 204) return answer.body;
    if (answer.status === 403) {
      throw new RegistryForbiddenError(this.url, method, errorReason(answer.body));
    }
    throw new RegistryError(this.url, method, `HTTP ${answer.status}`, answer.status);
  }

  /** An authenticated call following the client state machine of §4.3.2. */
  #auth(method: string, extra: [string, string][]): Promise<Uint8Array> {
    const identity = this.#identityOrThrow(method);
    const run = this.#queue.then(() => this.#authNow(identity, method, extra));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #authNow(
    identity: SessionIdentity,
    method: string,
    extra: [string, string][],
  ): Promise<Uint8Array> {
    const target = requestTarget(method, [["cn", identity.prefix], ...extra]);
    let retryAllowed = this.#key !== null;
    for (;;) {
      if (this.#key === null) this.#key = await this.#openSession(identity, method);
      const key = this.#key;
      const key1 = sha1(key);
      this.#key = sha1(key1);
      const headers = { [HMAC_HEADER]: b64(hmacSha1(key, target)) };
      let answer: Answer;
      try {
        answer = await this.#send(method, target, headers);
      } catch (err) {
        this.#key = null; // the registry may or may not have advanced the chain
        throw err;
      }
      let failure: string;
      if (answer.status === 200 || answer.status === 204) {
        const mac = answer.mac === null ? null : fromB64(answer.mac);
        if (mac && bytesEqual(mac, hmacSha1(key1, answer.body))) return answer.body;
        failure = answer.mac === null ? "answer carries no Re6stHMAC" : "wrong response MAC";
      } else if (answer.status === 403) {
        throw new RegistryForbiddenError(this.url, method, errorReason(answer.body));
      } else {
        failure = `HTTP ${answer.status}` + (answer.status === 401 ? " (no session)" : "");
      }
      this.#key = null;
      if (!retryAllowed) {
        throw new RegistryError(this.url, method, failure, answer.status);
      }
      retryAllowed = false;
    }
  }

  /** Runs hello and returns the verified, decrypted session key (§4.3.1). */
  async #openSession(identity: SessionIdentity, method: string): Promise<Uint8Array> {
    let body: Uint8Array;
    try {
      body = await this.hello(identity.prefix);
    } catch (cause) {
      const status = cause instanceof RegistryError ? cause.status : undefined;
      const why = describeError(cause);
      throw new RegistryError(this.url, method, `cannot open a session: ${why}`, status, {
        cause,
      });
    }
    const fail = (detail: string, cause?: unknown) =>
      new RegistryError(this.url, method, `cannot open a session: ${detail}`, 200, { cause });
    if (!body.length || body.length % 2) throw fail(`hello answer has odd length ${body.length}`);
    const half = body.length / 2;
    const e = body.subarray(0, half);
    if (!rsaVerify(identity.ca, e, body.subarray(half))) {
      throw fail("hello answer is not signed by the CA");
    }
    let key: Uint8Array;
    try {
      key = rsaDecrypt(identity.key, e);
    } catch (cause) {
      throw fail("cannot decrypt the hello answer with the node key", cause);
    }
    if (!key.length) throw fail("empty session secret");
    return key;
  }

  #identityOrThrow(method: string): SessionIdentity {
    if (!this.#identity) {
      throw new RegistryError(this.url, method, "needs a node identity (certificate and key)");
    }
    return this.#identity;
  }

  /** Sends one GET and reads the whole answer within the deadline. */
  async #send(method: string, target: string, headers: Record<string, string>): Promise<Answer> {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.#timeoutMs);
    try {
      const res = await this.#fetch(this.#origin + this.#basePath + target, {
        method: "GET",
        headers: { "User-Agent": this.#userAgent, ...headers },
        signal: ctrl.signal,
        redirect: "manual",
      });
      const body = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, body, mac: res.headers.get(HMAC_HEADER) };
    } catch (cause) {
      const detail = ctrl.signal.aborted
        ? `no answer within ${this.#timeoutMs / 1000} s`
        : `request failed: ${failureReason(cause)}`;
      throw new RegistryError(this.url, method, detail, undefined, { cause });
    } finally {
      clearTimeout(timer);
    }
  }
}

function orNull(value: string): string | null {
  return value === "" ? null : value;
}
