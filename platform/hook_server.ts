/**
 * The node's end of the OpenVPN hooks (PROTOCOL.md §8.1.4): a unix socket in the run folder
 * (mode 0600) where each `re6st ovpn-hook` process sends one JSON line and reads one back.
 * Events are checked and typed (core/openvpn/hooks.ts) before the node's handler sees them;
 * the handler's answer to a client-connect decides whether OpenVPN accepts the client.
 */
import { describeError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { acceptLoop, clearStaleSocket, readLine, writeAll } from "./unix_line.ts";
import {
  type ConnectAnswer,
  connectReply,
  decodeHookReply,
  decodeHookRequest,
  encodeHookReply,
  type HookEvent,
  type HookReply,
  hookScript,
  parseHookRequest,
} from "../core/openvpn/hooks.ts";

export { clearStaleSocket, SocketInUseError } from "./unix_line.ts";

/** Longest request line accepted, bytes. */
const MAX_LINE = 64 * 1024;
/** A hook that does not finish sending its line within this time is dropped, ms. */
const READ_TIMEOUT_MS = 5_000;

/**
 * Receives every hook event. For client-connect it must return the answer (no answer
 * refuses the client); for the other events the return value is ignored.
 */
export type HookHandler = (
  event: HookEvent,
) => ConnectAnswer | void | Promise<ConnectAnswer | void>;

/** Options of {@link startHookServer}. */
export interface HookServerOptions {
  /** Socket path, e.g. `/var/run/re6stnet/ovpn-hook.sock`. */
  path: string;
  handler: HookHandler;
  log?: Logger;
}

/** A running hook server. */
export interface HookServer {
  readonly path: string;
  /** Stops accepting, waits for requests in progress, removes the socket file. */
  close(): Promise<void>;
}

/** Starts serving hook requests on a fresh unix socket at `opts.path`. */
export async function startHookServer(opts: HookServerOptions): Promise<HookServer> {
  const { path, handler } = opts;
  const log = opts.log;
  await clearStaleSocket(path);
  const listener = Deno.listen({ transport: "unix", path });
  try {
    await Deno.chmod(path, 0o600);
  } catch (e) {
    listener.close();
    await Deno.remove(path).catch(() => {});
    throw new Error(`Cannot restrict hook socket "${path}" to mode 0600`, { cause: e });
  }
  const inflight = new Set<Promise<void>>();
  const conns = new Set<Deno.Conn>();
  let closed = false;

  const serve = async (conn: Deno.Conn) => {
    let reply: Omit<HookReply, "v">;
    try {
      const line = await readLine(conn, MAX_LINE, READ_TIMEOUT_MS);
      reply = await answer(line, handler, log);
    } catch (e) {
      log?.warn(`OpenVPN hook: bad request on ${path}: ${describeError(e)}; refused`);
      reply = { ok: false, error: describeError(e) };
    }
    try {
      await writeAll(conn, new TextEncoder().encode(encodeHookReply(reply)));
    } catch (e) {
      log?.debug(`OpenVPN hook: could not answer (hook gone?): ${describeError(e)}`);
    }
  };

  const loop = acceptLoop(listener, (conn) => {
    conns.add(conn);
    const p = serve(conn).finally(() => {
      conns.delete(conn);
      inflight.delete(p);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    });
    inflight.add(p);
  }, {
    closed: () => closed,
    onError: (e, retryMs) =>
      log?.error(
        `OpenVPN hook socket ${path}: accept failed: ${describeError(e)}; ` +
          (retryMs === null ? "hooks will fail" : `retrying in ${retryMs} ms`),
      ),
  });

  return {
    path,
    async close() {
      if (closed) return;
      closed = true;
      listener.close();
      await loop;
      await Promise.allSettled([...inflight]);
      await Deno.remove(path).catch(() => {});
    },
  };
}

async function answer(
  line: string,
  handler: HookHandler,
  log: Logger | undefined,
): Promise<Omit<HookReply, "v">> {
  const event = parseHookRequest(decodeHookRequest(line));
  log?.debug(`OpenVPN hook: ${describe(event)}`);
  let a: ConnectAnswer | void;
  try {
    a = await handler(event);
  } catch (e) {
    log?.error(`OpenVPN hook ${event.type} on ${event.dev}: handler failed: ${describeError(e)}`);
    return { ok: false, error: `node failed: ${describeError(e)}` };
  }
  if (event.type !== "client-connect") return { ok: true };
  if (!a) return { ok: false, error: "the node gave no answer" };
  return connectReply(event, a);
}

/** One-line description of an event for logs. */
export function describe(ev: HookEvent): string {
  switch (ev.type) {
    case "up":
      return `up ${ev.dev} mtu ${ev.mtu}`;
    case "route-up":
      return `route-up ${ev.dev} to ${ev.commonName} (serial ${ev.serial})` +
        (ev.externalIp ? `, seen as ${ev.externalIp}` : "");
    case "client-connect":
    case "client-disconnect":
      return `${ev.type} ${ev.dev} ${ev.commonName} (serial ${ev.serial}) from ` +
        `${ev.trustedIp} port ${ev.trustedPort}`;
  }
}

/** Sends one hook request line to the node at `socket` and returns its reply. */
export async function sendHookRequest(
  socket: string,
  requestLine: string,
  timeoutMs: number,
): Promise<HookReply> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    await writeAll(conn, new TextEncoder().encode(requestLine));
    return decodeHookReply(await readLine(conn, MAX_LINE, timeoutMs));
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the timeout.
    }
  }
}

/**
 * Writes the hook program OpenVPN runs (mode 0700): a script running
 * `<self> ovpn-hook --socket <socket>` with `env` (see core/openvpn/hooks.ts).
 */
export async function writeHookScript(
  scriptPath: string,
  self: readonly string[],
  socket: string,
  env: Record<string, string> = {},
): Promise<void> {
  const tmp = `${scriptPath}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, hookScript(self, socket, env), { mode: 0o700 });
  await Deno.chmod(tmp, 0o700);
  await Deno.rename(tmp, scriptPath);
}
