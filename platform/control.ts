// The node's control socket: a unix socket in the run folder (mode 0600) answering one JSON
// request line with one JSON line, or with a stream of JSON lines until either side ends it
// (core/status/control.ts). Used by `re6st status`.
import { describeError } from "../core/errors.ts";
import { isControlStream } from "../core/status/control.ts";
import { acceptLoop, clearStaleSocket, readLine, writeAll } from "./unix_line.ts";

/** Largest request accepted on the control socket, bytes. */
export const MAX_REQUEST_BYTES = 4096;
/** A connection that sends no complete request within this time is closed. */
const REQUEST_TIMEOUT_MS = 5000;

/**
 * Answers one parsed request; the result is sent back as JSON, or each line of a stream.
 * `signal` aborts when the client goes away or the server closes.
 */
export type ControlHandler = (request: Record<string, unknown>, signal: AbortSignal) => unknown;

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

/** Aborts `done` when the client closes its side (it sends nothing after its request). */
async function watchHangUp(conn: Deno.Conn, done: AbortController): Promise<void> {
  const buf = new Uint8Array(256);
  try {
    while (!done.signal.aborted && await conn.read(buf) !== null) { /* ignore */ }
  } catch { /* closed */ }
  done.abort();
}

async function serveOne(
  conn: Deno.Conn,
  handler: ControlHandler,
  onError: (m: string) => void,
  closing: AbortSignal,
) {
  const enc = new TextEncoder();
  const done = new AbortController();
  const stop = () => done.abort();
  closing.addEventListener("abort", stop);
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
    reply = await handler(request as Record<string, unknown>, done.signal);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    onError(`control socket: refused a request: ${message}`);
    reply = { error: message };
  }
  try {
    if (isControlStream(reply)) {
      const watching = watchHangUp(conn, done);
      try {
        // The stream ends itself once `done` aborts (maybe with a last line to send).
        for await (const item of reply.lines) {
          await writeAll(conn, enc.encode(JSON.stringify(item) + "\n"));
        }
      } finally {
        done.abort();
        try {
          conn.close(); // ends the hang-up watch's read
        } catch { /* already closed */ }
        await watching;
      }
    } else {
      await writeAll(conn, enc.encode(JSON.stringify(reply) + "\n"));
    }
  } catch {
    // The client went away; nothing to do.
  } finally {
    closing.removeEventListener("abort", stop);
    done.abort();
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
  const closing = new AbortController();
  let closed = false;
  const loop = acceptLoop(listener, (conn) => {
    const p = serveOne(conn, handler, onError, closing.signal).finally(() => pending.delete(p));
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
      closing.abort(); // ends the streams of followers
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

/** Connects to a control socket; ControlError when nobody answers or it is not ours. */
async function connectControl(path: string): Promise<Deno.Conn> {
  try {
    return await Deno.connect({ transport: "unix", path });
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
}

/** Sends one request to a control socket and returns the parsed answer. */
export async function queryControl(
  path: string,
  request: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<unknown> {
  const conn = await connectControl(path);
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

/**
 * Sends a streaming request (`{"request":"follow"}`) and hands each JSON line to `onLine`
 * until the node ends the stream ("ended") or `signal` aborts ("interrupted").
 */
export async function followControl(
  path: string,
  request: Record<string, unknown>,
  onLine: (value: unknown) => void,
  signal: AbortSignal,
): Promise<"ended" | "interrupted"> {
  const conn = await connectControl(path);
  const hangUp = () => {
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  signal.addEventListener("abort", hangUp, { once: true });
  const dec = new TextDecoder();
  let pending = "";
  try {
    await writeAll(conn, new TextEncoder().encode(JSON.stringify(request) + "\n"));
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      pending += dec.decode(buf.subarray(0, n), { stream: true });
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          throw new ControlError(`node sent a malformed line on ${path}`, "protocol");
        }
        onLine(value);
      }
    }
  } catch (e) {
    if (!signal.aborted) {
      if (e instanceof ControlError) throw e;
      throw new ControlError(`lost the node on ${path}: ${describeError(e)}`, "not-running");
    }
  } finally {
    signal.removeEventListener("abort", hangUp);
    hangUp();
  }
  return signal.aborted ? "interrupted" : "ended";
}
