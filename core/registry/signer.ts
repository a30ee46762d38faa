// Signing with the CA key off the JS thread (Web Crypto runs RSA on a worker pool), so that
// the registry keeps serving while certificates and hello answers are signed.

import type { PrivateKey } from "../crypto.ts";

/** PKCS1-SIG (RSASSA-PKCS1-v1_5, SHA-512, §0) of data, computed asynchronously. */
export type AsyncSigner = (data: Uint8Array) => Promise<Uint8Array>;

/** An AsyncSigner for `key`; same signatures as crypto.ts rsaSign (deterministic). */
export async function asyncSigner(key: PrivateKey): Promise<AsyncSigner> {
  const der = key.export({ type: "pkcs8", format: "der" });
  const webKey = await crypto.subtle.importKey(
    "pkcs8",
    new Uint8Array(der),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" },
    false,
    ["sign"],
  );
  return async (data) =>
    new Uint8Array(
      await crypto.subtle.sign("RSASSA-PKCS1-v1_5", webKey, data as Uint8Array<ArrayBuffer>),
    );
}

/** A promise-chain mutex: runs the given functions one at a time, in call order. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  /** Runs `fn` once every earlier call finished; returns its result. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.catch(() => {});
    return result;
  }
}
