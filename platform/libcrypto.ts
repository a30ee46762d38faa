// RSA through the system's OpenSSL libcrypto (found by soname) with Deno's FFI: the registry's
// RsaEngine (core/registry/rsa.ts) at OpenSSL's speed. Every call runs on the calling thread:
// measured with the bench's clients on the same two cores, signing on FFI worker threads gave
// 25% fewer sessions per second for 7% more issuances (bench/registry.ts); and no native key
// is ever used by two threads or after it is freed. PKCS#1 v1.5 signatures are deterministic:
// the same bytes as node:crypto.

import type { PrivateKey } from "../core/crypto.ts";
import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { builtinRsa, KEY_CACHE_SIZE, KeyCache, type RsaEngine } from "../core/registry/rsa.ts";

/** The soname looked up by default (OpenSSL 3, Debian 12's libssl3). */
export const LIBCRYPTO_SONAME = "libcrypto.so.3";

const EVP_PKEY_RSA = 6;
const RSA_PKCS1_PADDING = 1;

/** EVP_PKEY_sign, _encrypt, _decrypt: (ctx, out, *outlen, in, inlen) → 1 on success. */
const PKEY_OPERATION = {
  parameters: ["pointer", "buffer", "buffer", "buffer", "usize"],
  result: "i32",
} as const;

const SYMBOLS = {
  OpenSSL_version: { parameters: ["i32"], result: "pointer" },
  ERR_get_error: { parameters: [], result: "u64" },
  ERR_error_string_n: { parameters: ["u64", "buffer", "usize"], result: "void" },
  d2i_AutoPrivateKey: { parameters: ["pointer", "buffer", "i64"], result: "pointer" },
  d2i_PUBKEY: { parameters: ["pointer", "buffer", "i64"], result: "pointer" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_get_bits: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_get_size: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_get_base_id: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_CTX_set_rsa_padding: { parameters: ["pointer", "i32"], result: "i32" },
  EVP_PKEY_CTX_set_signature_md: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_PKEY_sign_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_sign: PKEY_OPERATION,
  EVP_PKEY_encrypt_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_encrypt: PKEY_OPERATION,
  EVP_PKEY_decrypt_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_decrypt: PKEY_OPERATION,
  EVP_PKEY_verify_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_verify: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  EVP_get_digestbyname: { parameters: ["buffer"], result: "pointer" },
  EVP_MD_get_size: { parameters: ["pointer"], result: "i32" },
  EVP_Digest: {
    parameters: ["buffer", "usize", "buffer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;
type Fns = Lib["symbols"];
type Ptr = Deno.PointerObject;

/** An opened libcrypto: its version text and symbols. */
export interface Libcrypto {
  /** e.g. "OpenSSL 3.0.19 27 Jan 2026 (libcrypto.so.3)". */
  version: string;
  fns: Fns;
  /** Unloads the library: nothing may call into it afterwards. */
  close(): void;
}

/** Opens libcrypto at `path` (a soname or a file); throws saying why it cannot. */
export function openLibcrypto(path: string = LIBCRYPTO_SONAME): Libcrypto {
  let dl: Lib;
  try {
    dl = Deno.dlopen(path, SYMBOLS);
  } catch (cause) {
    throw new Error(`Cannot load ${path}`, { cause });
  }
  const v = dl.symbols.OpenSSL_version(0);
  const text = v ? new Deno.UnsafePointerView(v).getCString() : "OpenSSL";
  return { version: `${text} (${path})`, fns: dl.symbols, close: () => dl.close() };
}

/** The current OpenSSL error queue as text (and emptied). */
function opensslError(f: Fns): string {
  const parts: string[] = [];
  const buf = new Uint8Array(256);
  for (let e = f.ERR_get_error(); e !== 0n; e = f.ERR_get_error()) {
    f.ERR_error_string_n(e, buf, BigInt(buf.length));
    parts.push(new TextDecoder().decode(buf.subarray(0, buf.indexOf(0))));
  }
  return parts.join("; ") || "unknown OpenSSL error";
}

/** `**pp` argument of the d2i_* functions: a pointer to the address of `der`. */
function addressOf(der: Uint8Array): BigUint64Array<ArrayBuffer> {
  return BigUint64Array.of(BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(der))));
}

function loadKey(f: Fns, der: Uint8Array, kind: "private" | "public", what: string): Ptr {
  const d2i = kind === "private" ? f.d2i_AutoPrivateKey : f.d2i_PUBKEY;
  const key = d2i(null, addressOf(der), BigInt(der.length));
  if (!key) throw new Error(`Cannot load ${what} into OpenSSL: ${opensslError(f)}`);
  if (f.EVP_PKEY_get_base_id(key) !== EVP_PKEY_RSA) {
    f.EVP_PKEY_free(key);
    throw new Error(`${what} is not an RSA key`);
  }
  return key;
}

/** An EVP_PKEY_CTX for `key` set up for PKCS#1 v1.5 `op` (and hash `md` for signatures). */
function pkeyCtx(
  f: Fns,
  key: Ptr,
  op: "sign" | "encrypt" | "decrypt" | "verify",
  md: Ptr | null,
): Ptr {
  const ctx = f.EVP_PKEY_CTX_new(key, null);
  if (!ctx) throw new Error(`EVP_PKEY_CTX_new: ${opensslError(f)}`);
  const init = {
    sign: f.EVP_PKEY_sign_init,
    encrypt: f.EVP_PKEY_encrypt_init,
    decrypt: f.EVP_PKEY_decrypt_init,
    verify: f.EVP_PKEY_verify_init,
  }[op];
  const ok = init(ctx) === 1 && f.EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) === 1 &&
    (md === null || f.EVP_PKEY_CTX_set_signature_md(ctx, md) === 1);
  if (!ok) {
    const why = opensslError(f);
    f.EVP_PKEY_CTX_free(ctx);
    throw new Error(`Cannot set up RSA ${op}: ${why}`);
  }
  return ctx;
}

/** A node key loaded in OpenSSL with its encryption context and verification contexts. */
interface FfiKey {
  bits: number;
  bytes: number;
  pkey: Ptr;
  ctx: Ptr;
  /** By hash name. */
  verifiers: Map<string, Ptr>;
}

/**
 * An RsaEngine signing with `caKeyPkcs8` (PKCS#8 DER of the CA key) through `lib`, which it
 * owns and unloads on close.
 */
export function libcryptoRsa(lib: Libcrypto, caKeyPkcs8: Uint8Array): RsaEngine {
  const f = lib.fns;
  const digests = new Map<string, { md: Ptr; size: number }>();
  const digest = (hash: string) => {
    let d = digests.get(hash);
    if (!d) {
      const md = f.EVP_get_digestbyname(new TextEncoder().encode(hash + "\0"));
      if (!md) throw new Error(`OpenSSL has no digest ${hash}`);
      digests.set(hash, d = { md, size: f.EVP_MD_get_size(md) });
    }
    return d;
  };
  const sha512 = digest("sha512");
  let caKey: Ptr;
  try {
    caKey = loadKey(f, caKeyPkcs8, "private", "CA key");
  } catch (e) {
    lib.close();
    throw e;
  }
  const sigBytes = f.EVP_PKEY_get_size(caKey);
  let signer: Ptr;
  try {
    signer = pkeyCtx(f, caKey, "sign", sha512.md);
  } catch (e) {
    f.EVP_PKEY_free(caKey);
    lib.close();
    throw e;
  }
  let closed = false;
  const keys = new KeyCache<FfiKey>(KEY_CACHE_SIZE, (k) => {
    f.EVP_PKEY_CTX_free(k.ctx);
    for (const v of k.verifiers.values()) f.EVP_PKEY_CTX_free(v);
    f.EVP_PKEY_free(k.pkey);
  });
  const loadNodeKey = (spki: Uint8Array): FfiKey => {
    const pkey = loadKey(f, spki, "public", "node public key");
    try {
      const ctx = pkeyCtx(f, pkey, "encrypt", null);
      const bits = f.EVP_PKEY_get_bits(pkey);
      return { bits, bytes: f.EVP_PKEY_get_size(pkey), pkey, ctx, verifiers: new Map() };
    } catch (e) {
      f.EVP_PKEY_free(pkey);
      throw e;
    }
  };
  const hash = (md: { md: Ptr; size: number }, data: Uint8Array) => {
    const out = new Uint8Array(md.size);
    if (f.EVP_Digest(data, BigInt(data.length), out, null, md.md, null) !== 1) {
      throw new Error(`EVP_Digest: ${opensslError(f)}`);
    }
    return out;
  };
  return {
    name: lib.version,
    sign(data) {
      if (closed) return Promise.reject(new Error("RSA engine closed"));
      const md = hash(sha512, data);
      const sig = new Uint8Array(sigBytes);
      const len = BigUint64Array.of(BigInt(sigBytes));
      if (f.EVP_PKEY_sign(signer, sig, len, md, BigInt(md.length)) !== 1) {
        return Promise.reject(new Error(`RSA signature failed: ${opensslError(f)}`));
      }
      return Promise.resolve(sig.subarray(0, Number(len[0])));
    },
    keyBits: (spki) => keys.get(spki, loadNodeKey).bits,
    encrypt(spki, data) {
      const key = keys.get(spki, loadNodeKey);
      const out = new Uint8Array(key.bytes);
      const len = BigUint64Array.of(BigInt(out.length));
      if (f.EVP_PKEY_encrypt(key.ctx, out, len, data, BigInt(data.length)) !== 1) {
        throw new Error(`RSA encryption failed: ${opensslError(f)}`);
      }
      return out.subarray(0, Number(len[0]));
    },
    verify(spki, hashName, data, sig) {
      try {
        const md = digest(hashName);
        const key = keys.get(spki, loadNodeKey);
        let ctx = key.verifiers.get(hashName);
        if (!ctx) key.verifiers.set(hashName, ctx = pkeyCtx(f, key.pkey, "verify", md.md));
        const d = hash(md, data);
        return f.EVP_PKEY_verify(ctx, sig, BigInt(sig.length), d, BigInt(d.length)) === 1;
      } catch {
        return false;
      } finally {
        opensslError(f); // a failed check leaves its reason in the queue
      }
    },
    close() {
      if (closed) return;
      closed = true;
      keys.clear();
      f.EVP_PKEY_CTX_free(signer);
      f.EVP_PKEY_free(caKey);
      lib.close();
    },
  };
}

/**
 * The registry's RSA engine: libcrypto at `path` (default the soname) when it loads, else the
 * built-in code; "none" asks for the built-in code. Says in the log which one runs.
 */
export function registryRsa(
  caKey: PrivateKey,
  path: string | undefined,
  log: Logger,
): RsaEngine {
  if (path === "none") {
    const rsa = builtinRsa(caKey, "built-in (node:crypto, Web Crypto; libcrypto disabled)");
    log.info(`RSA operations: ${rsa.name}`);
    return rsa;
  }
  try {
    const rsa = libcryptoRsa(openLibcrypto(path || LIBCRYPTO_SONAME), pkcs8(caKey));
    log.info(`RSA operations: ${rsa.name}`);
    return rsa;
  } catch (e) {
    const rsa = builtinRsa(caKey);
    log.warn(`RSA operations: ${rsa.name}, several times slower: ${describeError(e)}`);
    return rsa;
  }
}

function pkcs8(key: PrivateKey): Uint8Array {
  return new Uint8Array(key.export({ type: "pkcs8", format: "der" }));
}

/** A node's private key in OpenSSL: PKCS1-ENC decryption on the calling thread. */
export interface LibcryptoPrivateKey {
  /** RSAES-PKCS1-v1_5 decryption; throws when the ciphertext is invalid. */
  decrypt(data: Uint8Array): Uint8Array;
  /** Frees the key and unloads the library. */
  close(): void;
}

/** Loads a private key (PKCS#8 DER) into libcrypto at `path` (the registry's clients, benches). */
export function libcryptoPrivateKey(pkcs8Der: Uint8Array, path?: string): LibcryptoPrivateKey {
  const lib = openLibcrypto(path);
  const f = lib.fns;
  let key: Ptr, ctx: Ptr;
  try {
    key = loadKey(f, pkcs8Der, "private", "private key");
    try {
      ctx = pkeyCtx(f, key, "decrypt", null);
    } catch (e) {
      f.EVP_PKEY_free(key);
      throw e;
    }
  } catch (e) {
    lib.close();
    throw e;
  }
  const size = f.EVP_PKEY_get_size(key);
  return {
    decrypt(data) {
      const out = new Uint8Array(size);
      const len = BigUint64Array.of(BigInt(size));
      if (f.EVP_PKEY_decrypt(ctx, out, len, data, BigInt(data.length)) !== 1) {
        throw new Error(`RSA decryption failed: ${opensslError(f)}`);
      }
      return out.subarray(0, Number(len[0]));
    },
    close() {
      f.EVP_PKEY_CTX_free(ctx);
      f.EVP_PKEY_free(key);
      lib.close();
    },
  };
}
