// The HTTP/1.x the registry speaks (PROTOCOL.md §4.1): request heads parsed from bytes and
// responses written as bytes, for the server in platform/registry_http.ts. GET only; no
// request bodies; keep-alive as HTTP/1.1 and HTTP/1.0 clients expect it.

/** A request head that cannot be answered normally: answer `status` and close. */
export class HttpParseError extends Error {
  override name = "HttpParseError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A parsed request head. */
export interface RequestHead {
  method: string;
  /** Raw request-target as sent. */
  target: string;
  /** "1.0" or "1.1". */
  version: string;
  /** Header values by lower-case name (repeated headers joined with ", "). */
  headers: Map<string, string>;
  /** Whether the client wants the connection kept after the answer. */
  keepAlive: boolean;
  /** Whether a body follows (Content-Length > 0 or Transfer-Encoding): close after answering. */
  hasBody: boolean;
}

const CR = 13, LF = 10;

/** Index just past the CRLF CRLF ending a head within `buf[0..length]`, from `from`, or -1. */
export function headEnd(buf: Uint8Array, length: number, from = 0): number {
  for (let i = Math.max(from, 3); i < length; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) {
      return i + 1;
    }
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TARGET = /^[\x21-\x7e]+$/;

/** Parses a request head (the bytes up to and including the blank line). */
export function parseHead(bytes: Uint8Array): RequestHead {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  const lines = text.split("\r\n");
  const request = lines[0].split(" ");
  if (request.length !== 3) throw new HttpParseError(400, "malformed request line");
  const [method, target, proto] = request;
  const m = /^HTTP\/1\.([01])$/.exec(proto);
  if (!m) {
    throw new HttpParseError(/^HTTP\/\d\.\d$/.test(proto) ? 505 : 400, "unsupported protocol");
  }
  if (!TOKEN.test(method)) throw new HttpParseError(400, "malformed method");
  if (!TARGET.test(target)) throw new HttpParseError(400, "malformed request target");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    if (colon <= 0 || !TOKEN.test(name)) throw new HttpParseError(400, "malformed header line");
    // deno-lint-ignore no-control-regex -- control characters are what it looks for
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) {
      throw new HttpParseError(400, "control character in a header");
    }
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  const version = `1.${m[1]}`;
  const connection = (headers.get("connection") ?? "").toLowerCase().split(/\s*,\s*/);
  const keepAlive = version === "1.1"
    ? !connection.includes("close")
    : connection.includes("keep-alive");
  const length = headers.get("content-length");
  if (length !== undefined && !/^\d+(\s*,\s*\d+)*$/.test(length)) {
    throw new HttpParseError(400, "malformed Content-Length");
  }
  const hasBody = headers.has("transfer-encoding") ||
    (length !== undefined && length.split(",").some((n) => Number(n) > 0));
  return { method, target, version, headers, keepAlive, hasBody };
}

const REASONS: Record<number, string> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  414: "URI Too Long",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/**
 * The bytes of a response: status line, `headers`, Content-Length (except for 204), the
 * connection's fate for `version`, then `body`.
 */
export function responseBytes(
  status: number,
  headers: Record<string, string>,
  body: Uint8Array | null,
  version: string,
  keepAlive: boolean,
): Uint8Array {
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (status !== 204) head += `Content-Length: ${body?.length ?? 0}\r\n`;
  if (!keepAlive) head += "Connection: close\r\n";
  else if (version === "1.0") head += "Connection: keep-alive\r\n";
  head += "\r\n";
  const out = new Uint8Array(head.length + (body?.length ?? 0));
  for (let i = 0; i < head.length; i++) out[i] = head.charCodeAt(i) & 0xff;
  if (body) out.set(body, head.length);
  return out;
}
