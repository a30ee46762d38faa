// Network configuration document as a node decodes it (PROTOCOL.md §4.7, node-side rules).

import { BABEL_KEY_BYTES } from "../constants.ts";
import { type PrivateKeyInput, rsaDecrypt } from "../crypto.ts";

/** A JSON value as parsed by JSON.parse. */
export type JsonValue = null | boolean | number | string | JsonValue[] | {
  [key: string]: JsonValue;
};

/** One decoded network parameter: JSON as sent, or bytes for base64 and Babel key entries. */
export type NetValue = JsonValue | Uint8Array;

/** Decoded network parameters by name; unknown keys are kept (forward compatibility). */
export type NetworkParams = Record<string, NetValue>;

/** The document could not be decoded; the node keeps its previous parameters (§4.7 rule 5). */
export class NetworkConfigError extends Error {
  override name = "NetworkConfigError";
}

type Check = (v: NetValue) => boolean;
const isInt: Check = (v) => typeof v === "number" && Number.isSafeInteger(v);
const isString: Check = (v) => typeof v === "string";
const isStrings: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === "string");

/** Expected types of the keys this program reads; other keys are stored unchecked. */
const KNOWN: Record<string, Check> = {
  babel_default: isString,
  crl: (v) => Array.isArray(v) && v.every(isInt),
  protocol: isInt,
  min_protocol: isInt,
  registry_prefix: (v) => typeof v === "string" && /^[01]*$/.test(v),
  client_count: isInt,
  max_clients: isInt,
  tunnel_refresh: isInt,
  hello: isInt,
  encrypt: (v) => typeof v === "boolean",
  ipv4: isString,
  ipv4_sublen: isInt,
  same_country: isStrings,
  version: (v) => v instanceof Uint8Array,
  valid_until: (v) => typeof v === "number",
  delay_restart: isInt,
  babel_hmac_sign: (v) => v === "" || (v instanceof Uint8Array && v.length === BABEL_KEY_BYTES),
  babel_hmac_accept: (v) => v === "" || (v instanceof Uint8Array && v.length === BABEL_KEY_BYTES),
};

function fromBase64(value: JsonValue, key: string): Uint8Array {
  if (typeof value !== "string") throw new NetworkConfigError(`"${key}" is not base64 text`);
  try {
    return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
  } catch (cause) {
    throw new NetworkConfigError(`"${key}" is not valid base64`, { cause });
  }
}

/** Inflates zlib-wrapped deflate data (web streams: a node need not load node:zlib). */
async function inflate(body: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([body as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Decodes a getNetworkConfig body (zlib JSON) with the node key; rejects with NetworkConfigError. */
export async function decodeNetworkConfig(
  body: Uint8Array,
  nodeKey: PrivateKeyInput,
): Promise<NetworkParams> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await inflate(body)));
  } catch (cause) {
    throw new NetworkConfigError("network configuration is not zlib-compressed JSON", { cause });
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new NetworkConfigError("network configuration is not a JSON object");
  }
  const raw = { ...(doc as Record<string, JsonValue>) };
  const binary = raw[""] ?? [];
  delete raw[""];
  if (!isStrings(binary)) throw new NetworkConfigError(`"" is not a list of key names`);
  const params: NetworkParams = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key.startsWith("babel_hmac")) {
      if (value === "") params[key] = "";
      else {
        const ciphertext = fromBase64(value, key);
        try {
          params[key] = rsaDecrypt(nodeKey, ciphertext);
        } catch (cause) {
          throw new NetworkConfigError(`cannot decrypt "${key}" with the node key`, { cause });
        }
      }
    } else if ((binary as string[]).includes(key)) {
      params[key] = fromBase64(value, key);
    } else {
      params[key] = value;
    }
  }
  for (const [key, check] of Object.entries(KNOWN)) {
    if (key in params && !check(params[key])) {
      throw new NetworkConfigError(`"${key}" has an unexpected type or size`);
    }
  }
  return params;
}
