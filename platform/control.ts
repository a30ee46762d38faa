// The node's control socket: a unix socket in the run folder (mode 0600) answering one JSON
// request line with one JSON line. Used by `re6st status`.
import { describeError } from "../core/errors.ts";
import { acceptLoop, clearStaleSocket, readLine, writeAll } from "./unix_line.ts";

/** Largest request accepted on the control socket, bytes. */
export const MAX_REQUEST_BYTES = 4096;
/** A connection that sends no complete request within this time is closed. */
const REQUEST_TIMEOUT_MS = 5000;

/** Answers one parsed request; the result is sent back as JSON. */
export type ControlHandler = (request: Record<string, unknown>) => unknown;

/** A running control socket server. */
export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

/** Raised by queryControl: no node answers, or the socket is not ours to use. */
export class ControlError extends Error {
  constructor(
    message: string,
    readonly reason: "not-running" | "permission" | "protocol" | "timeout",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ControlError";
  }
}

async function serveOne(conn: Deno.Conn, handler: ControlHandler, onError: (m: string) => void) {
  const enc = new TextEncoder();
  let reply: unknown;
  try {
    const line = await readLine(conn, MAX_REQUEST_BYTES, REQUEST_TIMEOUT_MS);
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      throw new Error("malformed request: not JSON");
    }
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      throw new Error("malformed request: expected a JSON object");
    }
    reply = await handler(request as Record<string, unknown>);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    onError(`control socket: refused a request: ${message}`);
    reply = { error: message };
  }
  try {
    await writeAll(conn, enc.encode(JSON.stringify(reply) + "\n"));
  } catch {
    // The client went away; nothing to do.
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** Seams of {@link serveControl} (tests replace them). */
export interface ControlIo {
  /** Sets the mode of the socket file (default Deno.chmodSync). */
  chmod?: (path: string, mode: number) => void;
}

/** Starts the control socket at `path`; refuses if another process already answers there. */
export async function serveControl(
  path: string,
  handler: ControlHandler,
  onError: (message: string) => void = () => {},
  io: ControlIo = {},
): Promise<ControlServer> {
  await clearStaleSocket(path);
  const listener = Deno.listen({ transport: "unix", path });
  try {
    (io.chmod ?? Deno.chmodSync)(path, 0o600);
  } catch (e) {
    listener.close();
    await Deno.remove(path).catch(() => {});
    throw new Error(`Cannot restrict control socket "${path}" to mode 0600`, { cause: e });
  }
  const pending = new Set<Promise<void>>();
  let closed = false;
  const loop = acceptLoop(listener, (conn) => {
    const p = serveOne(conn, handler, onError).finally(() => pending.delete(p));
    pending.add(p);
  }, {
    closed: () => closed,
    onError: (e, retryMs) =>
      onError(
        `control socket ${path}: accept failed: ${describeError(e)}; ` +
          (retryMs === null
            ? "no more status requests will be answered"
            : `retrying in ${retryMs} ms`),
      ),
  });
  return {
    path,
    async close() {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      await loop;
      await Promise.all(pending);
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    },
  };
}

/** Sends one request to a control socket and returns the parsed answer. */
export async function queryControl(
  path: string,
  request: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<unknown> {
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new ControlError(`permission denied on ${path} (run as root?)`, "permission", {
        cause: e,
      });
    }
    throw new ControlError(`no node is running (nothing answers on ${path})`, "not-running", {
      cause: e,
    });
  }
  try {
    await writeAll(conn, new TextEncoder().encode(JSON.stringify(request) + "\n"));
    let line: string;
    try {
      line = await readLine(conn, 16 * 1024 * 1024, timeoutMs);
    } catch (e) {
      throw new ControlError(`node did not answer on ${path}: ${(e as Error).message}`, "timeout");
    }
    try {
      return JSON.parse(line);
    } catch {
      throw new ControlError(`node sent a malformed answer on ${path}`, "protocol");
    }
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}
