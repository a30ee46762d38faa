// The registry's HTTP server (PROTOCOL.md §4.1) on plain TCP listeners, so that it holds up
// under attack: a deadline for a request's headers, an idle timeout for kept-alive
// connections, caps on open connections in total and per source (the oldest idle one goes
// first), and an accept loop that backs off instead of dying when file descriptors run out.
// Parsing lives in core/registry/http1.ts, the policy in core/registry/limits.ts.

import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { headEnd, HttpParseError, parseHead, responseBytes } from "../core/registry/http1.ts";
import {
  type ConnectionLimits,
  ConnectionTable,
  OncePerMinute,
  sourceKey,
} from "../core/registry/limits.ts";
import type { RpcRequest } from "../core/registry/rpc.ts";
import type { HttpListeners, RpcHandler } from "../core/registry/service.ts";

/** Options of serveHttp. */
export interface HttpServerOptions extends ConnectionLimits {
  /** Largest request head accepted, in bytes (431 beyond). */
  maxHeadBytes?: number;
  /** Sources exempt from the per-source cap (authorized origins: a local proxy, the admin). */
  trusted?(address: string): boolean;
  /** Clock of the deadlines, in ms (default performance.now). */
  now?(): number;
}

/** Default largest request head: a request-target of 32 KiB and ordinary headers. */
export const MAX_HEAD_BYTES = 40 * 1024;

/** Raw request-target: an absolute-form target ("http://h/x") without scheme and authority. */
export function rawTarget(target: string): string {
  if (target.startsWith("/")) return target;
  const start = target.indexOf("//");
  if (start < 0) return target;
  const slash = target.indexOf("/", start + 2);
  return slash < 0 ? "/" : target.slice(slash);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Serves `handle` over HTTP/1.x on each of `binds`, all on one port (0: the first one chosen),
 * within `opts`' limits. Requests the server refuses itself (malformed, too large) are logged
 * at debug; running out of descriptors is logged once per episode.
 */
export function serveHttp(
  binds: string[],
  port: number,
  handle: RpcHandler,
  log: Logger,
  opts: HttpServerOptions,
): HttpListeners {
  const now = opts.now ?? (() => performance.now());
  const maxHead = opts.maxHeadBytes ?? MAX_HEAD_BYTES;
  const table = new ConnectionTable<Deno.Conn>(opts);
  const said = new OncePerMinute();
  const listeners: Deno.TcpListener[] = [];
  const listening: string[] = [];
  const running = new Set<Promise<void>>();
  let stopping = false;

  const closeConn = (c: Deno.Conn) => {
    table.close(c);
    try {
      c.close();
    } catch {
      // already closed
    }
  };

  const serveConn = async (conn: Deno.Conn) => {
    const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
    const source = sourceKey(peer);
    const verdict = table.open(conn, source, now(), opts.trusted?.(peer) ?? false);
    for (const old of verdict.evict) closeConn(old);
    if (verdict.overSource && said.due(`cap ${source}`, now())) {
      log.info(
        `More than ${opts.maxPerSource} connections from ${source}: closing the oldest idle ` +
          "ones (said once a minute)",
      );
    }
    if (!verdict.accept) {
      if (said.due(`full ${source}`, now())) {
        log.info(
          `Refused a connection from ${peer}: every connection is busy (said once a minute)`,
        );
      }
      closeConn(conn);
      return;
    }
    let buf = new Uint8Array(4096);
    let got = 0;
    try {
      for (;;) {
        let end = headEnd(buf, got);
        let scanned = 0;
        while (end < 0) {
          if (got >= maxHead) throw new HttpParseError(431, `request head over ${maxHead} bytes`);
          if (got === buf.length) {
            const bigger = new Uint8Array(Math.min(buf.length * 4, maxHead));
            bigger.set(buf);
            buf = bigger;
          }
          const n = await conn.read(buf.subarray(got));
          if (n === null) return;
          if (got === 0) table.reading(conn, now());
          scanned = Math.max(0, got - 3);
          got += n;
          end = headEnd(buf, got, scanned);
        }
        const head = parseHead(buf.subarray(0, end));
        table.busy(conn);
        const req: RpcRequest = {
          httpMethod: head.method,
          target: rawTarget(head.target),
          header: (name) => head.headers.get(name.toLowerCase()) ?? null,
          peerAddress: peer,
        };
        const res = await handle(req);
        const keep = head.keepAlive && !head.hasBody && !stopping;
        table.writing(conn, now());
        await writeAll(
          conn,
          responseBytes(res.status, res.headers, res.body, head.version, keep),
        );
        if (!keep) return;
        buf.copyWithin(0, end, got);
        got -= end;
        table.waiting(conn, now());
        if (got > 0) table.reading(conn, now());
      }
    } catch (e) {
      if (e instanceof HttpParseError) {
        log.debug(`HTTP from ${peer} refused with ${e.status}: ${describeError(e)}`);
        await writeAll(conn, responseBytes(e.status, {}, null, "1.1", false)).catch(() => {});
      } else if (!(e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted)) {
        log.debug(`HTTP connection from ${peer} ended: ${describeError(e)}`);
      }
    } finally {
      closeConn(conn);
    }
  };

  const acceptLoop = async (listener: Deno.TcpListener, where: string) => {
    let failures = 0;
    let backoffMs = 0;
    while (!stopping) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (stopping || e instanceof Deno.errors.BadResource) return;
        if (failures++ === 0) {
          log.warn(
            `Cannot accept connections on ${where}: ${describeError(e)}; closing the oldest ` +
              "idle connection and retrying (said once until it works again)",
          );
        }
        const old = table.oldestIdle();
        if (old) closeConn(old);
        backoffMs = Math.min(Math.max(2 * backoffMs, 10), 1000);
        await sleep(backoffMs);
        continue;
      }
      if (failures) {
        log.info(`Accepting connections on ${where} again after ${failures} failed attempts`);
        failures = 0;
        backoffMs = 0;
      }
      if (stopping) {
        conn.close();
        return;
      }
      const p = serveConn(conn).finally(() => running.delete(p));
      running.add(p);
    }
  };

  try {
    for (const hostname of binds) {
      // Both listeners share the port; SO_REUSEPORT lets the IPv4 socket coexist with the
      // dual-stack IPv6 one (Deno cannot set IPV6_V6ONLY), and Linux hands IPv4 connections
      // to the IPv4 socket.
      const listener = Deno.listen({ hostname, port, reusePort: binds.length > 1 });
      listeners.push(listener);
      port = (listener.addr as Deno.NetAddr).port;
      listening.push(`${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`);
    }
  } catch (e) {
    for (const l of listeners) l.close();
    throw new Error(`Cannot listen on port ${port} of ${binds.join(", ")}`, { cause: e });
  }
  const loops = listeners.map((l, i) => acceptLoop(l, listening[i]));
  const tickMs = Math.min(
    1000,
    Math.max(20, Math.min(opts.headerTimeoutMs, opts.idleTimeoutMs) / 4),
  );
  const sweeper = setInterval(() => {
    for (const c of table.expired(now())) {
      log.debug(`Closing connection from ${(c.remoteAddr as Deno.NetAddr).hostname}: timed out`);
      closeConn(c);
    }
  }, tickMs);
  return {
    port,
    listening,
    async shutdown() {
      stopping = true;
      clearInterval(sweeper);
      for (const l of listeners) l.close();
      await Promise.all(loops);
      for (const c of table.idle()) closeConn(c);
      await Promise.all(running);
    },
  };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/** The soft limit of open files of this process (/proc/self/limits), or null if unknown. */
export function fdSoftLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
