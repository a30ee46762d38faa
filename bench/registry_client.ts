// Load generator pieces of bench/registry.ts: an HTTP/1.1 keep-alive client lean enough not to
// be what is measured, and a preloaded registry database (N certificates issued as the
// registry would have issued them, written directly).

import { DatabaseSync } from "node:sqlite";
import { cnFromPrefix } from "../core/addressing.ts";
import { assembleCertificate, parseCertificate, tbsCertificate } from "../core/cert.ts";
import { CERT_LIFETIME_S } from "../core/constants.ts";
import { randomBytes } from "../core/crypto.ts";
import { CertStore } from "../core/registry/cert_index.ts";
import { registryDb } from "../core/registry/db.ts";
import { headEnd } from "../core/registry/http1.ts";
import type { RsaEngine } from "../core/registry/rsa.ts";

/** An answer of the registry. */
export interface Answer {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One kept-alive HTTP connection, reopened when the server closes it. */
export class KeepAlive {
  #conn: Deno.Conn | null = null;
  #buf = new Uint8Array(65536);
  #got = 0;

  constructor(readonly host: string, readonly port: number) {}

  /** GET `target` with `headers`. */
  async get(target: string, headers: Record<string, string> = {}): Promise<Answer> {
    this.#conn ??= await Deno.connect({ hostname: this.host, port: this.port });
    let head = `GET ${target} HTTP/1.1\r\nHost: ${this.host}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    const req = enc.encode(head + "\r\n");
    for (let off = 0; off < req.length;) off += await this.#conn.write(req.subarray(off));
    const answer = await this.#read();
    if (answer.headers.get("connection")?.toLowerCase() === "close") this.close();
    return answer;
  }

  async #read(): Promise<Answer> {
    let end = headEnd(this.#buf, this.#got);
    while (end < 0) {
      const from = Math.max(0, this.#got - 3);
      await this.#fill();
      end = headEnd(this.#buf, this.#got, from);
    }
    const lines = dec.decode(this.#buf.subarray(0, end - 4)).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
    }
    const length = status === 204 ? 0 : Number(headers.get("content-length") ?? 0);
    const total = end + length;
    while (this.#got < total) await this.#fill(total);
    const body = this.#buf.slice(end, total);
    this.#buf.copyWithin(0, total, this.#got);
    this.#got -= total;
    return { status, headers, body };
  }

  async #fill(need = 0): Promise<void> {
    if (need > this.#buf.length) {
      const bigger = new Uint8Array(need);
      bigger.set(this.#buf.subarray(0, this.#got));
      this.#buf = bigger;
    }
    const n = await this.#conn!.read(this.#buf.subarray(this.#got));
    if (n === null) throw new Error("registry closed the connection");
    this.#got += n;
  }

  /** Closes the connection. */
  close(): void {
    this.#conn?.close();
    this.#conn = null;
    this.#got = 0;
  }
}

/** Bits of prefix number `i` of length `len`. */
export function prefixBits(i: number, len: number): string {
  return i.toString(2).padStart(len, "0");
}

/**
 * Writes a registry database at `path` holding `n` certificates of prefix length `len` for the
 * public key `spki`, numbered and stored as the registry would have issued them from a fresh
 * database (prefix i, subject serial i, serial i+1, the free blocks beside them), signed by
 * `rsa` with the CA key. The first one is the registry node's.
 */
export async function preloadDb(
  path: string,
  caPem: string,
  rsa: RsaEngine,
  spki: Uint8Array,
  n: number,
  len: number,
): Promise<void> {
  const ca = parseCertificate(caPem);
  const now = new Date();
  now.setMilliseconds(0);
  const notAfter = new Date(now.getTime() + CERT_LIFETIME_S * 1000);
  const pems: string[] = new Array(n);
  const batch = 256;
  for (let start = 0; start < n; start += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - start) }, async (_, j) => {
        const i = start + j;
        const prefix = prefixBits(i, len);
        const tbs = tbsCertificate({
          ca,
          subject: [["serialNumber", String(i)], ["CN", cnFromPrefix(prefix)]],
          publicKey: spki,
          serial: i + 1,
          notBefore: now,
          notAfter,
        });
        pems[i] = assembleCertificate(tbs, await rsa.sign(tbs)).pem;
      }),
    );
  }
  const db = registryDb(new DatabaseSync(path), path);
  try {
    if (n === 0) return;
    db.tx(() => {
      db.sql.exec("DELETE FROM cert");
      const ins = db.sql.prepare("INSERT INTO cert VALUES (?, ?, ?)");
      for (let i = 0; i < n; i++) ins.run(prefixBits(i, len), null, pems[i]);
      // The free blocks: the aligned power-of-two ranges covering [n, 2^len).
      for (let start = n; start < 2 ** len;) {
        let size = start === 0 ? 2 ** len : start & -start;
        while (start + size > 2 ** len) size /= 2;
        const bits = Math.log2(size);
        ins.run(prefixBits(start / size, len - bits).slice(0, len - bits), null, null);
        start += size;
      }
      db.setConfig("prefix", prefixBits(0, len));
      db.setConfig("serial", n);
      db.setConfig("babel_hmac0", randomBytes(16));
    });
    new CertStore(db).load(); // the index this registry keeps beside the certificates
    db.sql.exec("VACUUM");
  } finally {
    db.close();
  }
}
