// The registry's RSA work (PROTOCOL.md §3.1) behind one interface: signatures with the CA key
// (certificates, hello answers), PKCS#1 v1.5 encryption for node keys (session secrets, Babel
// keys, bootstrap answers) and CSR signature checks. platform/libcrypto.ts does it through the
// system's OpenSSL when present; builtinRsa is the fallback, with byte-identical signatures.

import crypto, { type KeyObject } from "node:crypto";
import { Buffer } from "node:buffer";
import { loadPublicKey, modulusBits, type PrivateKey, rsaEncrypt } from "../crypto.ts";

/** What does the registry's RSA work. */
export interface RsaEngine {
  /** Which code it is, for the log and the bench (e.g. "OpenSSL 3.0.19 (libcrypto.so.3)"). */
  readonly name: string;
  /** PKCS1-SIG (RSASSA-PKCS1-v1_5, SHA-512, §0) with the CA key. */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** Modulus size in bits of an RSA public key (SubjectPublicKeyInfo DER); throws if not RSA. */
  keyBits(spki: Uint8Array): number;
  /** PKCS1-ENC (RSAES-PKCS1-v1_5) of `data` for the key `spki`. */
  encrypt(spki: Uint8Array, data: Uint8Array): Uint8Array;
  /** Whether `sig` is a PKCS#1 v1.5 signature of `data` with hash `hash` ("sha256", …). */
  verify(spki: Uint8Array, hash: string, data: Uint8Array, sig: Uint8Array): boolean;
  /** Releases what the engine holds (native keys, the library) once signatures in flight end. */
  close(): void;
}

/** Node keys an engine keeps loaded, by SubjectPublicKeyInfo. */
export const KEY_CACHE_SIZE = 1024;

/**
 * A small LRU of loaded keys by SubjectPublicKeyInfo DER; `free` releases an evicted one (and
 * every one on clear).
 */
export class KeyCache<K> {
  readonly #keys = new Map<string, K>();
  /** Map keys of the SubjectPublicKeyInfo arrays seen (a certificate's stays the same). */
  readonly #ids = new WeakMap<Uint8Array, string>();
  constructor(readonly size: number, readonly free: (key: K) => void = () => {}) {}

  /** The key of `spki`, loaded by `load` when missing. */
  get(spki: Uint8Array, load: (spki: Uint8Array) => K): K {
    let id = this.#ids.get(spki);
    if (id === undefined) this.#ids.set(spki, id = String.fromCharCode(...spki));
    let key = this.#keys.get(id);
    if (key !== undefined) {
      this.#keys.delete(id);
    } else {
      key = load(spki);
      if (this.#keys.size >= this.size) {
        const [oldId, old] = this.#keys.entries().next().value!;
        this.#keys.delete(oldId);
        this.free(old);
      }
    }
    this.#keys.set(id, key);
    return key;
  }

  /** Frees every key. */
  clear(): void {
    for (const k of this.#keys.values()) this.free(k);
    this.#keys.clear();
  }
}

/** The engine on node:crypto, signing with Web Crypto (which runs RSA off the JS thread). */
export function builtinRsa(
  caKey: PrivateKey,
  name = "built-in (node:crypto, Web Crypto)",
): RsaEngine {
  let webKey: Promise<CryptoKey> | null = null;
  const keys = new KeyCache<KeyObject>(KEY_CACHE_SIZE);
  const load = (spki: Uint8Array) => loadPublicKey(spki, "node public key");
  const importKey = () =>
    crypto.subtle.importKey(
      "pkcs8",
      new Uint8Array(caKey.export({ type: "pkcs8", format: "der" })),
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" },
      false,
      ["sign"],
    );
  return {
    name,
    async sign(data) {
      webKey ??= importKey();
      const sig = await crypto.subtle.sign(
        "RSASSA-PKCS1-v1_5",
        await webKey,
        data as Uint8Array<ArrayBuffer>,
      );
      return new Uint8Array(sig);
    },
    keyBits: (spki) => modulusBits(keys.get(spki, load)),
    encrypt: (spki, data) => rsaEncrypt(keys.get(spki, load), data),
    verify(spki, hash, data, sig) {
      try {
        const key = { key: Buffer.from(spki), format: "der", type: "spki" } as const;
        return crypto.verify(hash, data, {
          key: crypto.createPublicKey(key),
          padding: crypto.constants.RSA_PKCS1_PADDING,
        }, sig);
      } catch {
        return false;
      }
    },
    close: () => keys.clear(),
  };
}
