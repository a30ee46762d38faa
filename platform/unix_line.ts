// Line-oriented unix sockets shared by the node's local servers (OpenVPN hooks, control):
// claiming a socket path safely, and reading/writing one line with limits.

/** Raised when another process already serves the socket path. */
export class SocketInUseError extends Error {
  override name = "SocketInUseError";
}

/**
 * Removes `path` if it is a socket nobody answers on (left by a crashed node); throws
 * {@link SocketInUseError} if something answers, or an error if it is not a socket.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!st.isSocket) {
    throw new Error(`Cannot use "${path}" as a socket: a file that is not a socket is there`);
  }
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
  } catch {
    await Deno.remove(path).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    return;
  }
  throw new SocketInUseError(`Socket "${path}" is in use by another process (is a node running?)`);
}

/** Reads bytes up to the first newline; fails past `max` bytes, at EOF or after `ms`. */
export async function readLine(conn: Deno.Conn, max: number, ms: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const buf = new Uint8Array(4096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      reject(new Error(`no complete line within ${ms} ms`));
    }, ms);
  });
  try {
    for (;;) {
      const n = await Promise.race([conn.read(buf), timeout]);
      if (n === null) throw new Error("connection closed before a complete line");
      const part = buf.slice(0, n);
      const nl = part.indexOf(10);
      chunks.push(nl < 0 ? part : part.subarray(0, nl));
      size += nl < 0 ? n : nl;
      if (size > max) throw new Error(`line longer than ${max} bytes`);
      if (nl >= 0) break;
    }
  } finally {
    clearTimeout(timer);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}

/** Writes all of `data` to `conn`. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Pauses after a failed accept: first, and longest (doubling in between), ms. */
const ACCEPT_RETRY_MS = [50, 1000] as const;

/** What {@link acceptLoop} needs from a listener (Deno.Listener fits). */
export interface Acceptor {
  accept(): Promise<Deno.Conn>;
}

/**
 * Accepts connections until the listener is closed (`closed()` true, or the listener gone).
 * A failed accept (e.g. too many open files) is reported with the pause before the next one.
 */
export async function acceptLoop(
  listener: Acceptor,
  onConn: (conn: Deno.Conn) => void,
  o: {
    closed(): boolean;
    onError(error: unknown, retryMs: number | null): void;
    sleep?: (ms: number) => Promise<void>;
  },
): Promise<void> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let delay: number = ACCEPT_RETRY_MS[0];
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (e) {
      if (o.closed()) return;
      if (e instanceof Deno.errors.BadResource) {
        o.onError(e, null); // the listener itself is gone: nothing more to accept
        return;
      }
      o.onError(e, delay);
      await sleep(delay);
      delay = Math.min(delay * 2, ACCEPT_RETRY_MS[1]);
      continue;
    }
    delay = ACCEPT_RETRY_MS[0];
    onConn(conn);
  }
}
