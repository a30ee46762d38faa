// The UPnP IGD client: SSDP search over UDP multicast, device description and SOAP control
// over a minimal HTTP/1.1 client (one connection per call, `Connection: close`). Messages are
// built and parsed by core/upnp/igd.ts; this file only moves bytes.
//
// Its own HTTP client rather than fetch: the local address of the connection to the gateway
// is the internal client of our mappings (what the gateway sees), fetch would send LAN calls
// through an HTTP proxy set in the environment, and a timeout closes the socket for sure.

import { describeError } from "../core/errors.ts";
import {
  addMappingArgs,
  deleteMappingArgs,
  findWanService,
  MAPPING_ENTRY_FIELDS,
  mappingEntry,
  soapFault,
  soapRequest,
  soapResponse,
  SSDP_ADDRESS,
  SSDP_PORT,
  SSDP_TARGETS,
  ssdpLocation,
  ssdpSearch,
} from "../core/upnp/igd.ts";
import {
  type Gateway,
  type PortMapper,
  type PortMapping,
  UPNP_NO_SUCH_ENTRY,
  UpnpError,
} from "../core/upnp/port_mapper.ts";

/** Options of {@link createPortMapper}. */
export interface PortMapperOptions {
  /** Time limit of one HTTP call to the gateway (default 5000 ms). */
  callTimeoutMs?: number;
}

/** What the gateway is called in errors about discovery. */
const SSDP_NAME = `SSDP ${SSDP_ADDRESS}:${SSDP_PORT}`;
/** GetGenericPortMappingEntry: index past the end (713) or no such entry (714). */
const END_OF_LIST = [713, UPNP_NO_SUCH_ENTRY];
/** Stop listing after this many entries (a gateway that never ends the list). */
const MAX_LISTED = 1024;
/** Largest HTTP answer read from a gateway. */
const MAX_ANSWER_BYTES = 1 << 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Creates the real UPnP IGD client. */
export function createPortMapper(opts: PortMapperOptions = {}): PortMapper {
  const timeoutMs = opts.callTimeoutMs ?? 5000;

  const soap = async (
    gw: Gateway,
    action: string,
    args: readonly (readonly [string, string | number])[],
    names: readonly string[] = [],
  ): Promise<Record<string, string>> => {
    const call = soapRequest(gw.serviceType, action, args);
    let answer: HttpAnswer;
    try {
      answer = await httpRequest(gw.controlUrl, "POST", call.headers, call.body, timeoutMs);
    } catch (e) {
      throw new UpnpError(gw.controlUrl, action, describeError(e), undefined, { cause: e });
    }
    if (answer.status !== 200) {
      const f = soapFault(answer.body);
      const why = f ? `error ${f.code} ${f.description}`.trim() : `HTTP ${answer.status}`;
      throw new UpnpError(gw.controlUrl, action, why, f?.code);
    }
    try {
      return soapResponse(answer.body, action, names);
    } catch (e) {
      throw new UpnpError(gw.controlUrl, action, describeError(e), undefined, { cause: e });
    }
  };

  const describe = async (location: string): Promise<Gateway> => {
    let answer: HttpAnswer;
    try {
      answer = await httpRequest(location, "GET", {}, "", timeoutMs);
    } catch (e) {
      throw new UpnpError(location, "description", describeError(e), undefined, { cause: e });
    }
    if (answer.status !== 200) {
      throw new UpnpError(location, "description", `HTTP ${answer.status}`);
    }
    const service = findWanService(answer.body, location);
    if (!service) {
      throw new UpnpError(
        location,
        "description",
        "no WANIPConnection or WANPPPConnection service",
      );
    }
    return { ...service, location, localAddress: answer.localAddress };
  };

  return {
    async discover(searchMs) {
      let sock: Deno.DatagramConn;
      try {
        sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
      } catch (e) {
        throw new UpnpError(SSDP_NAME, "discover", `cannot open a UDP socket: ${describeError(e)}`);
      }
      const search = async () => {
        try {
          for (const st of SSDP_TARGETS) {
            await sock.send(encoder.encode(ssdpSearch(st)), {
              transport: "udp",
              hostname: SSDP_ADDRESS,
              port: SSDP_PORT,
            });
          }
        } catch (e) {
          throw new UpnpError(SSDP_NAME, "discover", `cannot send the search: ${describeError(e)}`);
        }
      };
      const start = Date.now();
      const deadline = start + searchMs;
      // Searches go out twice (at the start and half-way) in case a datagram is lost.
      let resendAt: number | null = start + searchMs / 2;
      const seen = new Set<string>();
      let problem: UpnpError | undefined;
      try {
        await search();
        let pending = sock.receive();
        pending.catch(() => {}); // rejects when the socket closes at the end
        for (;;) {
          const now = Date.now();
          if (resendAt !== null && now >= resendAt) {
            resendAt = null;
            await search();
          }
          const until = Math.min(deadline, resendAt ?? deadline);
          if (now >= deadline) break;
          const got = await within(pending, until - now);
          if (got === undefined) continue;
          pending = sock.receive();
          pending.catch(() => {});
          const location = ssdpLocation(decoder.decode(got[0]));
          if (!location || seen.has(location)) continue;
          seen.add(location);
          try {
            return await describe(location);
          } catch (e) {
            problem = e as UpnpError; // describe() throws nothing else
          }
        }
      } catch (e) {
        if (e instanceof UpnpError) throw e;
        throw new UpnpError(SSDP_NAME, "discover", describeError(e), undefined, { cause: e });
      } finally {
        sock.close();
      }
      // Something answered but could not be used: say what, rather than "nothing answered".
      if (problem) throw problem;
      return null;
    },

    async externalAddress(gw) {
      const out = await soap(gw, "GetExternalIPAddress", [], ["NewExternalIPAddress"]);
      const ip = out.NewExternalIPAddress?.trim() ?? "";
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
        throw new UpnpError(
          gw.controlUrl,
          "GetExternalIPAddress",
          `no IPv4 address in the answer (${JSON.stringify(ip)})`,
        );
      }
      return ip;
    },

    async addMapping(gw, req) {
      await soap(gw, "AddPortMapping", addMappingArgs(req, gw.localAddress));
    },

    async deleteMapping(gw, key) {
      await soap(gw, "DeletePortMapping", deleteMappingArgs(key));
    },

    async listMappings(gw) {
      const out: PortMapping[] = [];
      for (let i = 0; i < MAX_LISTED; i++) {
        let entry: Record<string, string>;
        try {
          entry = await soap(
            gw,
            "GetGenericPortMappingEntry",
            [["NewPortMappingIndex", i]],
            MAPPING_ENTRY_FIELDS,
          );
        } catch (e) {
          if (e instanceof UpnpError && END_OF_LIST.includes(e.code ?? -1)) break;
          throw e;
        }
        const m = mappingEntry(entry);
        if (m) out.push(m);
      }
      return out;
    },
  };
}

/** Resolves with `p`, or with undefined after `ms` milliseconds. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((r) =>
    timer = setTimeout(() => r(undefined), Math.max(0, ms))
  );
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An HTTP answer and the local address of the connection it came on. */
export interface HttpAnswer {
  status: number;
  body: string;
  localAddress: string;
}

/** One HTTP/1.1 exchange on a fresh connection (`Connection: close`), within `timeoutMs`. */
export async function httpRequest(
  url: string,
  method: "GET" | "POST",
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<HttpAnswer> {
  const u = new URL(url);
  if (u.protocol !== "http:") throw new Error(`unsupported URL ${url} (only http://)`);
  const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(u.port || 80);
  // At the time limit: the signal stops a connect; closing the connection fails a pending read.
  const abort = new AbortController();
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => {
    abort.abort();
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  try {
    conn = await Deno.connect({ hostname, port, signal: abort.signal });
    try {
      const payload = encoder.encode(body);
      const head = [
        `${method} ${u.pathname}${u.search} HTTP/1.1`,
        `Host: ${u.host}`,
        "Connection: close",
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        ...(method === "POST" ? [`Content-Length: ${payload.length}`] : []),
        "",
        "",
      ].join("\r\n");
      await writeAll(conn, encoder.encode(head));
      await writeAll(conn, payload);
      const answer = parseHttpResponse(await readAll(conn));
      return { ...answer, localAddress: (conn.localAddr as Deno.NetAddr).hostname };
    } finally {
      if (!abort.signal.aborted) conn.close();
    }
  } catch (e) {
    if (abort.signal.aborted) {
      throw new Error(`no answer from ${u.host} within ${timeoutMs} ms`);
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function writeAll(c: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await c.write(bytes.subarray(off));
}

async function readAll(c: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const buf = new Uint8Array(16384);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    size += n;
    if (size > MAX_ANSWER_BYTES) throw new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.length;
  }
  return out;
}

/** Status and body of a whole HTTP/1.x answer (Content-Length, chunked, or up to the end). */
export function parseHttpResponse(raw: Uint8Array): { status: number; body: string } {
  const text = decoder.decode(raw);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) throw new Error("the answer has no complete HTTP header");
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})\b/.exec(statusLine);
  if (!m) throw new Error(`not an HTTP answer: ${JSON.stringify(statusLine.slice(0, 60))}`);
  const header = (name: string) =>
    lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  let body = text.slice(end + 4);
  if (/chunked/i.test(header("transfer-encoding") ?? "")) body = dechunk(body);
  else {
    const length = Number(header("content-length"));
    if (Number.isInteger(length) && length >= 0) {
      // Content-Length counts bytes: cut on the bytes, not on the characters.
      const bytes = encoder.encode(body);
      body = decoder.decode(bytes.subarray(0, length));
    }
  }
  return { status: Number(m[1]), body };
}

function dechunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const eol = rest.indexOf("\r\n");
    if (eol < 0) throw new Error("truncated chunked HTTP body");
    const size = parseInt(rest.slice(0, eol).split(";")[0], 16);
    if (!Number.isInteger(size)) throw new Error("malformed chunked HTTP body");
    if (size === 0) return out;
    // Chunk sizes count bytes.
    const data = encoder.encode(rest.slice(eol + 2));
    if (data.length < size) throw new Error("truncated chunked HTTP body");
    out += decoder.decode(data.subarray(0, size));
    rest = decoder.decode(data.subarray(size)).replace(/^\r\n/, "");
  }
}
