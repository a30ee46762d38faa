// The registry's sockets (PROTOCOL.md §4.1, §5.8): HTTP listeners on its IPv4 and IPv6 bind
// addresses, and the UDP socket of the relay through the local node.

import type { Logger } from "../core/log.ts";
import type { RpcRequest } from "../core/registry/rpc.ts";
import type { HttpListeners, RpcHandler } from "../core/registry/service.ts";

/** Raw request-target of a Deno request: the URL without scheme and authority. */
export function rawTarget(url: string): string {
  const start = url.indexOf("//");
  const slash = url.indexOf("/", start + 2);
  return slash < 0 ? "/" : url.slice(slash);
}

/** Serves `handle` over HTTP on each of `binds`, all on one port (0: the first one chosen). */
export function listenHttp(
  binds: string[],
  port: number,
  handle: RpcHandler,
  log: Logger,
): HttpListeners {
  const list: Deno.HttpServer<Deno.NetAddr>[] = [];
  const listening: string[] = [];
  const handler = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const rpcReq: RpcRequest = {
      httpMethod: req.method,
      target: rawTarget(req.url),
      header: (n) => req.headers.get(n),
      peerAddress: info.remoteAddr.hostname,
    };
    const res = await handle(rpcReq);
    return new Response(res.body as BodyInit | null, { status: res.status, headers: res.headers });
  };
  try {
    for (const hostname of binds) {
      // Both listeners share the port; SO_REUSEPORT lets the IPv4 socket coexist with the
      // dual-stack IPv6 one (Deno cannot set IPV6_V6ONLY), and Linux hands IPv4 connections
      // to the IPv4 socket.
      const server = Deno.serve({
        hostname,
        port,
        reusePort: binds.length > 1,
        onListen() {},
        onError(e) {
          log.error(`HTTP error: ${e}`);
          return new Response(null, { status: 500 });
        },
      }, handler);
      list.push(server);
      port = server.addr.port;
      listening.push(`${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`);
    }
  } catch (e) {
    for (const s of list) void s.shutdown();
    throw new Error(`Cannot listen on port ${port} of ${binds.join(", ")}`, { cause: e });
  }
  return {
    port,
    listening,
    async shutdown() {
      await Promise.all(list.map((s) => s.shutdown()));
    },
  };
}

/**
 * Opens the UDP socket of the relay on ::1 (any port), where only local programs can reach it;
 * null when unavailable.
 */
export function openRelaySocket(): Deno.DatagramConn | null {
  try {
    return Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 });
  } catch {
    return null;
  }
}
