// Request targets of the registry RPC (PROTOCOL.md §4.1): `/<method>[?<query>]`, with a
// strict `application/x-www-form-urlencoded` query; built by the client, parsed by the server.

/** A request target that does not follow §4.1 (answered with 400). */
export class BadTargetError extends Error {
  override name = "BadTargetError";
}

/** Method name and parameters of a request target. */
export interface ParsedTarget {
  method: string;
  params: Map<string, string>;
}

/**
 * Parses `target` (the raw request-target): exactly one "/" before the query, at position 0;
 * every `&`-separated field has a "="; blank values kept; the last repeated name wins.
 */
export function parseTarget(target: string): ParsedTarget {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (!path.startsWith("/") || path.indexOf("/", 1) >= 0) {
    throw new BadTargetError(`malformed path ${JSON.stringify(path.slice(0, 100))}`);
  }
  const params = new Map<string, string>();
  const query = q < 0 ? "" : target.slice(q + 1);
  if (query !== "") {
    for (const field of query.split("&")) {
      const eq = field.indexOf("=");
      if (eq < 0) throw new BadTargetError(`malformed query field ${JSON.stringify(field)}`);
      params.set(unquotePlus(field.slice(0, eq)), unquotePlus(field.slice(eq + 1)));
    }
  }
  return { method: path.slice(1), params };
}

/** Decodes `+` and `%XX` like Python's unquote_plus (bad escapes kept, UTF-8 with U+FFFD). */
export function unquotePlus(text: string): string {
  const s = text.replaceAll("+", " ");
  if (!s.includes("%")) return s;
  // Each run of escapes is decoded on its own: the text around it is whole characters, so an
  // incomplete UTF-8 sequence at the end of a run is invalid whatever follows, as in Python.
  return s.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(3 * i + 1, 3 * i + 3), 16);
    return decoder.decode(bytes);
  });
}

const decoder = new TextDecoder();

const SAFE_BYTE = /[A-Za-z0-9_.\-~]/;

/** Encodes text like Python's quote_plus (UTF-8, space → "+", only `A-Za-z0-9_.-~` kept). */
export function quotePlus(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const ch = String.fromCharCode(byte);
    if (byte < 0x80 && SAFE_BYTE.test(ch)) out += ch;
    else if (byte === 0x20) out += "+";
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Request target `/<method>[?k=v&…]` with every parameter in the given order (§4.1). */
export function requestTarget(method: string, params: [string, string][] = []): string {
  if (!params.length) return "/" + method;
  return "/" + method + "?" + params.map(([k, v]) => quotePlus(k) + "=" + quotePlus(v)).join("&");
}
