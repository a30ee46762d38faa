// Unix socket transport for the babeld local-interface client (core/babel/local.ts).

import { describeError } from "../core/errors.ts";
import type { BabelConnection, BabelConnector } from "../core/babel/local.ts";

/** Wraps a connected Deno stream as a {@link BabelConnection}. */
export function connectionOf(conn: Deno.Conn): BabelConnection {
  const buf = new Uint8Array(64 * 1024);
  let closed = false;
  return {
    async read() {
      if (closed) return null;
      try {
        const n = await conn.read(buf);
        return n === null ? null : buf.slice(0, n);
      } catch (e) {
        // Closing the connection interrupts a pending read: that is an end of stream.
        if (closed) return null;
        throw e;
      }
    },
    async write(data) {
      let off = 0;
      while (off < data.length) off += await conn.write(data.subarray(off));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // Already closed by the peer.
      }
    },
  };
}

/** A connector to babeld's local socket at `path` (`local-path-readwrite`). */
export function unixConnector(path: string): BabelConnector {
  return async () => {
    try {
      return connectionOf(await Deno.connect({ transport: "unix", path }));
    } catch (e) {
      throw new Error(`Cannot connect to babeld socket ${path}: ${describeError(e)}`, {
        cause: e,
      });
    }
  };
}

/**
 * True when something answers on `path` with babeld's banner ("BABEL …") within
 * `timeoutMs`; used to detect a running babeld and stale socket files.
 */
export async function babelSocketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return false;
  }
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  try {
    const buf = new Uint8Array(512);
    let text = "";
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) return false;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text.startsWith("BABEL ");
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}
