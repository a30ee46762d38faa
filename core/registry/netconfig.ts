// Network configuration served by the registry (PROTOCOL.md §4.7–§4.9): the canonical
// parameters, the per-node document (zlib JSON, Babel keys encrypted for the node) and the
// Babel key rotation of updateHMAC.

import { deflateSync } from "node:zlib";
import type { Bits } from "../addressing.ts";
import { BABEL_DEFAULT, BABEL_KEY_BYTES, NETCONF_TEMP_S, PROTOCOL_VERSION } from "../constants.ts";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Registry options published in the network configuration (§4.7). */
export interface PublishedOptions {
  minProtocol: number;
  clientCount: number;
  maxClients: number;
  tunnelRefresh: number;
  hello: number;
  encrypt: boolean;
  /** Normalised "a.b.c.d/N" and bits per node, when the IPv4 payload is enabled (§1.6). */
  ipv4?: { network: string; sublen: number };
  /** Country codes of `same_country`, when configured. */
  sameCountry?: string[];
}

/** The stored Babel keys h0, h1, h2 (§4.9); null = absent, empty array = "accept anything". */
export interface BabelKeys {
  h0: Uint8Array | null;
  h1: Uint8Array | null;
  h2: Uint8Array | null;
}

/**
 * The configuration that decides version bumps (§4.8): every published key except `version`,
 * `""`, `valid_until` and the Babel keys, in document order.
 */
export function canonicalConfig(
  opts: PublishedOptions,
  registryPrefix: Bits,
  crl: readonly number[],
): Record<string, Json> {
  const c: Record<string, Json> = {
    babel_default: BABEL_DEFAULT,
    crl: [...crl].sort((a, b) => a - b),
    protocol: PROTOCOL_VERSION,
    registry_prefix: registryPrefix,
  };
  if (opts.ipv4) {
    c.ipv4 = opts.ipv4.network;
    c.ipv4_sublen = opts.ipv4.sublen;
  }
  if (opts.sameCountry?.length) c.same_country = [...opts.sameCountry];
  c.client_count = opts.clientCount;
  c.encrypt = opts.encrypt;
  c.hello = opts.hello;
  c.max_clients = opts.maxClients;
  c.min_protocol = opts.minProtocol;
  c.tunnel_refresh = opts.tunnelRefresh;
  return c;
}

/** JSON text as Python's `json.dumps` writes it (", " and ": " separators, ASCII only). */
export function pythonJson(value: Json, sortKeys = false): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`Cannot serialise ${value} as JSON`);
    return String(value);
  }
  if (typeof value === "string") {
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"),
    );
  }
  if (Array.isArray(value)) return "[" + value.map((v) => pythonJson(v, sortKeys)).join(", ") + "]";
  const keys = Object.keys(value);
  if (sortKeys) keys.sort();
  return "{" + keys.map((k) => pythonJson(k) + ": " + pythonJson(value[k], sortKeys)).join(", ") +
    "}";
}

/** The `last_config` text of a canonical configuration (sorted keys, §4.8). */
export function lastConfigText(canonical: Record<string, Json>): string {
  return pythonJson(canonical, true);
}

/** Standard base64 with padding. */
export function base64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/** Published sign/accept keys: the first two present stored keys, in order (§4.9). */
export function publishedKeys(keys: BabelKeys): Uint8Array[] {
  return [keys.h0, keys.h1, keys.h2].filter((k): k is Uint8Array => k !== null).slice(0, 2);
}

/**
 * The getNetworkConfig body for one node (§4.7): zlib-compressed JSON with the Babel keys
 * encrypted for the node by `encrypt` (PKCS1-ENC; "" for an empty key, quirk Q1).
 */
export function buildDocument(
  canonical: Record<string, Json>,
  version: Uint8Array,
  keys: BabelKeys,
  timing: DocumentTiming,
  encrypt: (data: Uint8Array) => Uint8Array,
): Uint8Array {
  return documentFor(documentHead(canonical, version, timing), keys, encrypt);
}

/** The times a document carries besides the canonical configuration (UNIX seconds). */
export interface DocumentTiming {
  /** `valid_until` (phase 1 of a key rotation), or null. */
  validUntil: number | null;
  /** `babel_key_switch_at` (phase 2; our extension, docs/babel-key-rotation.md), or null. */
  keySwitchAt: number | null;
}

/**
 * The part of every node's document before the Babel keys (the same for all nodes until the
 * next version): its JSON text without the closing brace.
 */
export function documentHead(
  canonical: Record<string, Json>,
  version: Uint8Array,
  timing: DocumentTiming,
): string {
  const doc: Record<string, Json> = { ...canonical, "": ["version"], version: base64(version) };
  if (timing.validUntil !== null) doc.valid_until = timing.validUntil;
  if (timing.keySwitchAt !== null) doc.babel_key_switch_at = timing.keySwitchAt;
  return pythonJson(doc).slice(0, -1);
}

/** The document of one node from the common `head` (documentHead), as buildDocument. */
export function documentFor(
  head: string,
  keys: BabelKeys,
  encrypt: (data: Uint8Array) => Uint8Array,
): Uint8Array {
  let text = head;
  const names = ["babel_hmac_sign", "babel_hmac_accept"];
  publishedKeys(keys).forEach((k, i) => {
    text += `, "${names[i]}": "${k.length ? base64(encrypt(k)) : ""}"`;
  });
  return new Uint8Array(deflateSync(new TextEncoder().encode(text + "}")));
}

/** Result of one updateHMAC step. */
export interface Rotation {
  keys: BabelKeys;
  /** `valid_until` to publish (phase 1 only), else null. */
  validUntil: number | null;
  /** `babel_key_switch_at` to publish (phase 2 only), else null. */
  keySwitchAt: number | null;
}

/** The next Babel key state of updateHMAC (§4.9); `newKey` gives fresh 16-byte keys. */
export function rotateBabelKeys(
  keys: BabelKeys,
  nowS: number,
  newKey: () => Uint8Array,
  switchDelayS = 0,
): Rotation {
  const { h0, h1 } = keys;
  const none = { validUntil: null, keySwitchAt: null };
  if (h0 !== null && h1 === null) {
    // Phase 1: keep signing with K0, start accepting a new K1.
    return {
      keys: { h0, h1: checkKey(newKey()), h2: null },
      validUntil: nowS + NETCONF_TEMP_S,
      keySwitchAt: null,
    };
  }
  if (h0 !== null && h1 !== null) {
    // Phase 2: sign with K1, still accept K0; every node switches at the same moment.
    return { keys: { h0: null, h1, h2: h0 }, validUntil: null, keySwitchAt: nowS + switchDelayS };
  }
  if (h0 === null && h1 !== null) {
    // Phase 3: only K1.
    return { keys: { h0: h1, h1: null, h2: null }, ...none };
  }
  // No authentication yet: sign with a new key, accept unsigned packets meanwhile.
  return { keys: { h0: null, h1: checkKey(newKey()), h2: new Uint8Array(0) }, ...none };
}

function checkKey(k: Uint8Array): Uint8Array {
  if (k.length !== BABEL_KEY_BYTES) throw new Error(`Babel keys are ${BABEL_KEY_BYTES} bytes`);
  return k;
}
