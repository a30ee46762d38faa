// Cryptographic primitives of re6st (PROTOCOL.md §3.1, §3.2): RSA PKCS#1 v1.5 encryption and
// SHA-512 signatures (never OAEP/PSS), HMAC-SHA1, SHA-1, session secrets, RSA key helpers.
//
// Checked on Deno 2.9.6: node:crypto privateDecrypt with RSA_PKCS1_PADDING works (the
// VECTORS.md §11 ciphertext decrypts), so no manual unpadding is needed.

import { Buffer } from "node:buffer";
import crypto, { type KeyObject } from "node:crypto";
import { SECRET_BYTES } from "./constants.ts";

/** A loaded RSA private key. */
export type PrivateKey = KeyObject;
/** A loaded RSA public key. */
export type PublicKey = KeyObject;
/** An RSA public key: a KeyObject or PEM text (SPKI, PKCS#1, or a certificate). */
export type PublicKeyInput = KeyObject | string;
/** An RSA private key: a KeyObject or PEM text (PKCS#8 or PKCS#1). */
export type PrivateKeyInput = KeyObject | string;

const PKCS1 = crypto.constants.RSA_PKCS1_PADDING;

function bytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function asPrivate(key: PrivateKeyInput): KeyObject {
  return typeof key === "string" ? crypto.createPrivateKey(key) : key;
}

function asPublic(key: PublicKeyInput): KeyObject {
  return typeof key === "string" ? crypto.createPublicKey(key) : key;
}

function toData(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? new TextEncoder().encode(data) : data;
}

/** RSAES-PKCS1-v1_5 encryption of `data` for `publicKey` (PKCS1-ENC, §0). */
export function rsaEncrypt(publicKey: PublicKeyInput, data: Uint8Array): Uint8Array {
  return bytes(crypto.publicEncrypt({ key: publicKey, padding: PKCS1 }, data));
}

/** RSAES-PKCS1-v1_5 decryption with `privateKey`; throws when the ciphertext is invalid. */
export function rsaDecrypt(privateKey: PrivateKeyInput, data: Uint8Array): Uint8Array {
  try {
    return bytes(crypto.privateDecrypt({ key: privateKey, padding: PKCS1 }, data));
  } catch (cause) {
    throw new Error("RSA decryption failed", { cause });
  }
}

/** RSASSA-PKCS1-v1_5 signature with SHA-512 of `data` (PKCS1-SIG, §0). */
export function rsaSign(privateKey: PrivateKeyInput, data: Uint8Array): Uint8Array {
  return bytes(crypto.sign("sha512", data, { key: asPrivate(privateKey), padding: PKCS1 }));
}

/** Whether `sig` is a valid RSASSA-PKCS1-v1_5 SHA-512 signature of `data` (never throws). */
export function rsaVerify(publicKey: PublicKeyInput, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    return crypto.verify("sha512", data, { key: asPublic(publicKey), padding: PKCS1 }, sig);
  } catch {
    return false;
  }
}

/** HMAC-SHA1 (20 bytes) of `data` (text is UTF-8 encoded) under `key`. */
export function hmacSha1(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return bytes(crypto.createHmac("sha1", key).update(toData(data)).digest());
}

/** SHA-1 digest (20 bytes). */
export function sha1(data: Uint8Array | string): Uint8Array {
  return bytes(crypto.createHash("sha1").update(toData(data)).digest());
}

/** Digest of `data` with any hash algorithm known to node:crypto (e.g. "sha256"). */
export function digest(alg: string, data: Uint8Array): Uint8Array {
  return bytes(crypto.createHash(alg).update(data).digest());
}

/** `n` bytes from the CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  return bytes(crypto.randomBytes(n));
}

/** A fully random 20-byte secret (registry session secrets, §3.2). */
export function randomSecret(): Uint8Array {
  return randomBytes(SECRET_BYTES);
}

let lastMicros = 0n;

/** Current UNIX time in microseconds. */
export function nowMicros(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

/**
 * A 20-byte peer-protocol secret (§3.2): A = UNIX time in µs (big-endian 64 bits), then 12
 * random bytes (B, C), so a later secret compares greater. Without `now`, the time is taken
 * from the clock and kept strictly increasing within this process. `random` (12 bytes) is
 * for tests.
 */
export function timeSecret(now?: bigint | number, random?: Uint8Array): Uint8Array {
  let a: bigint;
  if (now === undefined) {
    a = nowMicros();
    if (a <= lastMicros) a = lastMicros + 1n;
    lastMicros = a;
  } else {
    a = BigInt(now);
  }
  if (a < 0n || a >> 64n !== 0n) throw new RangeError(`Time ${a} µs does not fit in 64 bits`);
  const rnd = random ?? randomBytes(12);
  if (rnd.length !== 12) throw new RangeError("timeSecret needs exactly 12 random bytes");
  const out = new Uint8Array(SECRET_BYTES);
  new DataView(out.buffer).setBigUint64(0, a);
  out.set(rnd, 8);
  return out;
}

/** Byte-wise lexicographic comparison: negative, 0 or positive like a sort comparator. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Constant-time equality of two byte strings (for MAC checks). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** Lower-case hexadecimal text of bytes. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hexadecimal text (case-insensitive); throws on odd length or bad digits. */
export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new Error(`Invalid hexadecimal text ${JSON.stringify(text.slice(0, 80))}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// --- RSA keys ---

/** Generates an RSA private key of `bits` bits, as PKCS#8 PEM ("BEGIN PRIVATE KEY"). */
export function generateRsaKey(bits: number): Promise<string> {
  return new Promise((resolve, reject) => {
    crypto.generateKeyPair(
      "rsa",
      { modulusLength: bits, publicExponent: 65537 },
      (err, _pub, key) => {
        if (err) reject(new Error(`Cannot generate a ${bits}-bit RSA key`, { cause: err }));
        else resolve(key.export({ type: "pkcs8", format: "pem" }).toString());
      },
    );
  });
}

function requireRsa(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== "rsa") {
    throw new Error(`${what} is a ${key.asymmetricKeyType} key, re6st needs RSA`);
  }
  return key;
}

/** Loads an RSA private key from PEM (PKCS#8 or PKCS#1); `source` names it in errors. */
export function loadPrivateKey(pem: string | Uint8Array, source = "private key"): KeyObject {
  let key: KeyObject;
  try {
    key = crypto.createPrivateKey(typeof pem === "string" ? pem : new TextDecoder().decode(pem));
  } catch (cause) {
    throw new Error(`Cannot load ${source}: not a PEM private key`, { cause });
  }
  return requireRsa(key, source);
}

/** Loads an RSA public key from PEM (SPKI, PKCS#1 or certificate) or SPKI DER. */
export function loadPublicKey(input: string | Uint8Array, source = "public key"): KeyObject {
  let key: KeyObject;
  try {
    key = typeof input === "string"
      ? crypto.createPublicKey(input)
      : crypto.createPublicKey({ key: Buffer.from(input), format: "der", type: "spki" });
  } catch (cause) {
    throw new Error(`Cannot load ${source}`, { cause });
  }
  return requireRsa(key, source);
}

/** The public half of a private key. */
export function publicKeyOf(privateKey: PrivateKeyInput): KeyObject {
  return crypto.createPublicKey(privateKey);
}

/** SubjectPublicKeyInfo DER of a key (private keys give their public half). */
export function spkiDer(key: KeyObject): Uint8Array {
  const pub = key.type === "private" ? crypto.createPublicKey(key) : key;
  return bytes(pub.export({ type: "spki", format: "der" }));
}

/** RSA modulus size of a key, in bits. */
export function modulusBits(key: PublicKeyInput | PrivateKeyInput): number {
  const k = typeof key === "string" ? crypto.createPublicKey(key) : key;
  const bits = k.asymmetricKeyDetails?.modulusLength;
  if (k.asymmetricKeyType !== "rsa" || !bits) throw new Error("Not an RSA key");
  return bits;
}

/** RSA modulus size of a key, in bytes (length of ciphertexts and signatures). */
export function modulusBytes(key: PublicKeyInput | PrivateKeyInput): number {
  return Math.ceil(modulusBits(key) / 8);
}
