// RegistryClient against a fake fetch: requests, HMAC session chain (VECTORS.md §4), retries.

import assert from "node:assert/strict";
import {
  RegistryClient,
  RegistryError,
  RegistryForbiddenError,
  userAgent,
} from "../../core/registry/client.ts";
import { fromHex, hmacSha1, rsaEncrypt, rsaSign, sha1 } from "../../core/crypto.ts";
import { SOFTWARE_VERSION } from "../../core/constants.ts";
import {
  NODE1_CERT_PEM,
  NODE1_KEY_PEM,
  TEST_CA_CERT_PEM,
  TEST_CA_KEY_PEM,
} from "../helpers/vectors.ts";

const PREFIX = "0000000000000110";
const K0 = fromHex("000102030405060708090a0b0c0d0e0f10111213");
const identity = { prefix: PREFIX, key: NODE1_KEY_PEM, ca: TEST_CA_CERT_PEM };
/** Awaits `fn`, expecting it to throw an instance of `cls`; returns the error. */
async function rejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    return err;
  }
  throw new assert.AssertionError({ message: `expected ${cls.name} to be thrown` });
}

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const bytes = (b: Uint8Array) => new Uint8Array(b);
const enc = (s: string) => new TextEncoder().encode(s);

interface Seen {
  url: string;
  target: string;
  headers: Headers;
}

type Handler = (target: string, headers: Headers) => Response | Promise<Response>;

/** A fake fetch that records requests and answers with `handler`. */
function fakeFetch(handler: Handler) {
  const seen: Seen[] = [];
  const fetch = async (input: string, init: RequestInit) => {
    const u = new URL(input);
    const headers = new Headers(init.headers);
    const target = u.pathname + u.search;
    seen.push({ url: input, target, headers });
    return await handler(target, headers);
  };
  return { fetch, seen };
}

/** hello answer E‖S carrying `secret`, signed by `signer`. */
function helloBody(secret: Uint8Array, signer = TEST_CA_KEY_PEM): Uint8Array {
  const e = rsaEncrypt(NODE1_CERT_PEM, secret);
  const s = rsaSign(signer, e);
  const out = new Uint8Array(e.length + s.length);
  out.set(e);
  out.set(s, e.length);
  return out;
}

/**
 * A registry session per §4.3.2 (server side): hello hands out `secrets` in turn; methods
 * answer with `answer(method)`; an authenticated request with no session gets 401.
 */
function sessionServer(
  secrets: Uint8Array[],
  answer: (method: string) => { status?: number; body?: string; badMac?: boolean },
) {
  let entries: Uint8Array[] = [];
  let hellos = 0;
  const handler: Handler = (target, headers) => {
    const method = target.slice(1).split("?")[0];
    if (method === "hello") {
      const k = secrets[Math.min(hellos++, secrets.length - 1)];
      entries = entries.length ? [entries[0], k] : [k];
      return new Response(bytes(helloBody(k)));
    }
    if (!entries.length) return new Response(null, { status: 401 });
    const mac = headers.get("Re6stHMAC");
    const key = entries.find((k) => mac === b64(hmacSha1(k, target)));
    if (!key) return new Response(null, { status: 400 });
    const k1 = sha1(key);
    entries = [sha1(k1)];
    const a = answer(method);
    const status = a.status ?? (a.body ? 200 : 204);
    if (status !== 200 && status !== 204) return new Response(null, { status });
    const body = enc(a.body ?? "");
    const macOut = a.badMac ? b64(new Uint8Array(20)) : b64(hmacSha1(k1, body));
    return new Response(status === 204 ? null : bytes(body), {
      status,
      headers: { Re6stHMAC: macOut },
    });
  };
  return { handler, hellos: () => hellos, restart: () => entries = [] };
}

Deno.test("requests go under the URL's base path with the re6stnet User-Agent", async () => {
  const { fetch, seen } = fakeFetch(() => new Response("PEM"));
  const client = new RegistryClient("http://reg.example:8080/re6st/", { fetch, platform: "Test" });
  assert.deepEqual(await client.getCa(), "PEM");
  await client.requestCertificate("tok", "-----BEGIN X-----\n", "FR,EU");
  assert.deepEqual(seen[0].url, "http://reg.example:8080/re6st/getCa");
  assert.deepEqual(
    seen[1].target,
    "/re6st/requestCertificate?token=tok&req=-----BEGIN+X-----%0A&location=FR%2CEU&ip=",
  );
  assert.deepEqual(seen[0].headers.get("User-Agent"), `re6stnet/${SOFTWARE_VERSION}, Test`);
  assert.match(userAgent(), /^re6stnet\/[^,]+, \S+$/);
});

Deno.test("an empty 200 answer counts as 204", async () => {
  for (const status of [200, 204]) {
    const { fetch } = fakeFetch(() => new Response(null, { status }));
    const client = new RegistryClient("http://reg.example/", { fetch });
    assert.deepEqual(await client.requestCertificate("x", "csr"), null);
    assert.deepEqual(await client.isToken("x"), false);
    assert.deepEqual(await client.getNodePrefix("a@b"), null);
  }
});

Deno.test("a 403 answer raises RegistryForbiddenError naming the registry and method", async () => {
  const { fetch } = fakeFetch(() => new Response(null, { status: 403 }));
  const client = new RegistryClient("http://reg.example/", { fetch });
  const err = await rejects(() => client.revoke("3/16"), RegistryForbiddenError);
  assert.match(err.message, /http:\/\/reg\.example\/ revoke: forbidden/);
  assert.deepEqual(err.status, 403);
});

Deno.test("other HTTP errors raise RegistryError with the status", async () => {
  const { fetch } = fakeFetch(() => new Response("dup", { status: 409 }));
  const client = new RegistryClient("http://reg.example/", { fetch });
  const err = await rejects(() => client.addToken("a@b", "abcdefgh"), RegistryError);
  assert.deepEqual(err.status, 409);
  assert.match(err.message, /addToken: HTTP 409/);
});

Deno.test("the session follows the VECTORS §4 MAC chain, MACing the target without base path", async () => {
  const macs: string[] = [];
  const handler: Handler = (target, headers) => {
    if (target.startsWith("/base/hello?")) {
      assert.deepEqual(target, `/base/hello?client_prefix=${PREFIX}&protocol=10`);
      return new Response(bytes(helloBody(K0)));
    }
    macs.push(headers.get("Re6stHMAC")!);
    if (target === `/base/getNetworkConfig?cn=${PREFIX}`) {
      return new Response("BODY1", { headers: { Re6stHMAC: "ntJdWPU9VP6Ib5GAIzNwYk9hpG0=" } });
    }
    assert.deepEqual(target, `/base/renewCertificate?cn=${PREFIX}`);
    return new Response(null, {
      status: 204,
      headers: { Re6stHMAC: "AiYY5NS07SfZ42Lz6DxbkfE1MPc=" },
    });
  };
  const { fetch, seen } = fakeFetch(handler);
  const client = new RegistryClient("http://reg.example/base", { fetch, identity });
  assert.deepEqual(new TextDecoder().decode(await client.getNetworkConfig()), "BODY1");
  assert.deepEqual(await client.renewCertificate(), null);
  assert.deepEqual(macs, ["I0dm3tdWrpgoXTdQzGUfQktZC0E=", "WlyEjWenBP2BLlBBIPN5qcy80GA="]);
  assert.deepEqual(seen.length, 3);
});

Deno.test("a 401 after a registry restart is answered with one fresh hello", async () => {
  const server = sessionServer([K0, fromHex("ff".repeat(20))], () => ({ body: "DH" }));
  const { fetch, seen } = fakeFetch(server.handler);
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  assert.deepEqual(await client.getDh(), "DH");
  server.restart();
  assert.deepEqual(await client.getDh(), "DH");
  assert.deepEqual(seen.map((s) => `${s.target.split("?")[0]}`), [
    "/hello",
    "/getDh",
    "/getDh",
    "/hello",
    "/getDh",
  ]);
  assert.deepEqual(server.hellos(), 2);
});

Deno.test("an established session that fails is retried once after a new hello", async () => {
  let fail = 0;
  const server = sessionServer([K0, fromHex("aa".repeat(20))], () => {
    return fail-- > 0 ? { body: "X", badMac: true } : { body: "OK" };
  });
  const { fetch, seen } = fakeFetch(server.handler);
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  assert.deepEqual(await client.getDh(), "OK");
  fail = 1;
  assert.deepEqual(await client.getDh(), "OK");
  assert.deepEqual(server.hellos(), 2);
  assert.deepEqual(seen.map((s) => s.target.split("?")[0]), [
    "/hello",
    "/getDh",
    "/getDh",
    "/hello",
    "/getDh",
  ]);
  fail = 2;
  const err = await rejects(() => client.getDh(), RegistryError);
  assert.match(err.message, /getDh: wrong response MAC/);
  assert.deepEqual(server.hellos(), 3);
});

Deno.test("a failure right after hello is not retried", async () => {
  const server = sessionServer([K0], () => ({ status: 500 }));
  const { fetch, seen } = fakeFetch(server.handler);
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  const err = await rejects(() => client.getNetworkConfig(), RegistryError);
  assert.deepEqual(err.status, 500);
  assert.deepEqual(seen.length, 2);
});

Deno.test("a 403 on an authenticated method is raised, not retried", async () => {
  const server = sessionServer([K0], () => ({ status: 403 }));
  const { fetch, seen } = fakeFetch(server.handler);
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  await rejects(() => client.getCountry("192.0.2.1"), RegistryForbiddenError);
  assert.deepEqual(seen.length, 2);
  assert.deepEqual(seen[1].target.split("?")[1], `cn=${PREFIX}&address=192.0.2.1`);
});

Deno.test("a hello answer not signed by the CA is refused", async () => {
  const { fetch } = fakeFetch(() => new Response(bytes(helloBody(K0, NODE1_KEY_PEM))));
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  const err = await rejects(() => client.getDh(), RegistryError);
  assert.match(err.message, /not signed by the CA/);
});

Deno.test("a failed hello explains why the session could not be opened", async () => {
  const { fetch } = fakeFetch(() => new Response(null, { status: 404 }));
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  const err = await rejects(() => client.getDh(), RegistryError);
  assert.match(err.message, /getDh: cannot open a session: .*hello: HTTP 404/);
  assert.deepEqual(err.status, 404);
});

Deno.test("authenticated methods need an identity", async () => {
  const { fetch } = fakeFetch(() => new Response("x"));
  const client = new RegistryClient("http://reg.example/", { fetch });
  const e = await rejects(() => client.getDh(), RegistryError);
  assert.match(e.message, /needs a node identity/);
});

Deno.test("concurrent authenticated calls keep the chain in step", async () => {
  const server = sessionServer([K0], (m) => ({ body: m }));
  const { fetch } = fakeFetch(async (t, h) => {
    await new Promise((r) => setTimeout(r, 1));
    return server.handler(t, h);
  });
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  const got = await Promise.all([client.getDh(), client.getDh(), client.getCountry("::1")]);
  assert.deepEqual(got, ["getDh", "getDh", "getCountry"]);
  assert.deepEqual(server.hellos(), 1);
});

Deno.test("getBootstrapPeer decrypts the answer with the node key", async () => {
  const plain = "0000000000000111 192.0.2.7,1194,tcp";
  const cipher = rsaEncrypt(NODE1_CERT_PEM, enc(plain));
  let entries: Uint8Array[] = [];
  const server: Handler = (target) => {
    if (target.startsWith("/hello")) {
      entries = [K0];
      return new Response(bytes(helloBody(K0)));
    }
    const k1 = sha1(entries[0]);
    return new Response(bytes(cipher), { headers: { Re6stHMAC: b64(hmacSha1(k1, cipher)) } });
  };
  const { fetch } = fakeFetch(server);
  const client = new RegistryClient("http://reg.example/", { fetch, identity });
  assert.deepEqual(await client.getBootstrapPeer(), {
    prefix: "0000000000000111",
    addresses: "192.0.2.7,1194,tcp",
  });
});

Deno.test("a registry that does not answer in time gives a RegistryError", async () => {
  const fetch = (_: string, init: RequestInit) =>
    new Promise<Response>((_, reject) =>
      init.signal!.addEventListener("abort", () => reject(new DOMException("aborted")))
    );
  const client = new RegistryClient("http://reg.example/", { fetch, timeoutMs: 30 });
  const err = await rejects(() => client.getCa(), RegistryError);
  assert.match(err.message, /getCa: no answer within 0\.03 s/);
});

Deno.test("versions and topology are parsed from JSON", async () => {
  const { fetch } = fakeFetch((t) =>
    new Response(t === "/versions" ? '{"0":"1.0, Linux","1":null}' : '{"":["0/16"]}')
  );
  const client = new RegistryClient("http://reg.example/", { fetch });
  assert.deepEqual(await client.versions(), { "0": "1.0, Linux", "1": null });
  assert.deepEqual(await client.topology(), { "": ["0/16"] });
});

Deno.test("a bad registry URL is refused with its text", () => {
  let err: unknown;
  try {
    new RegistryClient("ftp://x/");
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof RegistryError);
  assert.match(err.message, /ftp:\/\/x\//);
});
