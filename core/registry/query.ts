// Request-target parsing of the registry RPC (PROTOCOL.md §4.1): `/<method>[?<query>]`,
// strict `application/x-www-form-urlencoded` query.

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
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < s.length;) {
    if (s[i] === "%" && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...enc.encode(ch));
      i += ch.length;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
