// Client of babeld's local interface (text protocol, stock 1.12.1, PROTOCOL.md §8.4.2-§8.4.3).
//
// One connection in `monitor` mode keeps a live copy of babeld's tables; commands are sent
// on the same connection and their answers matched in order (babeld answers every line with
// `ok`, `no …` or `bad`, and object lines never split a command's answer). `dump()` re-reads
// everything and drops what babeld no longer lists. When the connection drops (babeld
// stopped or restarted) the client reconnects with back-off, resynchronises, and re-adds the
// interfaces that were added at run time; both transitions are reported as events.

import { describeError } from "../errors.ts";
import { BABEL_LOCAL_LINE_MAX, checkInterfaceName } from "./config.ts";
import {
  type BabelClient,
  type BabelClientEvent,
  type BabelClientOptions,
  BabelCommandError,
  type BabelConnection,
  type BabelInfo,
  BabelUnavailableError,
  type SetTimer,
} from "./client_types.ts";
import { type BabelReply, parseBabelLine } from "./parse.ts";
import { applyEvent, type BabelView, emptyView, eventKey, pruneView, snapshotOf } from "./view.ts";

export * from "./client_types.ts";

interface Pending {
  line: string;
  /** Keys of objects seen while waiting (for dump/monitor resynchronisation). */
  window?: Set<string>;
  /** Settles the pending command once (later calls are ignored) and stops its timer. */
  resolve(r: BabelReply): void;
  reject(e: Error): void;
}

interface Session {
  conn: BabelConnection;
  pending: Pending[];
  writing: Promise<void>;
  /** True once the "BABEL 1.x" line arrived. */
  sawBanner: boolean;
  /** Ends the session with a reason (idempotent). */
  fail(reason: string): void;
  failed: string | null;
}

const defaultSetTimer: SetTimer = (fn, ms) => {
  const id = setTimeout(fn, ms);
  return () => clearTimeout(id);
};

const MAX_PARTIAL_LINE = 64 * 1024;

/** Starts a client that connects to babeld and keeps its view current. */
export function createBabelClient(opts: BabelClientOptions): BabelClient {
  const where = opts.where ?? "babeld";
  const log = opts.log;
  const retryMin = opts.retryMinMs ?? 100;
  const retryMax = opts.retryMaxMs ?? 5000;
  const cmdTimeout = opts.commandTimeoutMs ?? 10_000;
  const setTimer = opts.setTimer ?? defaultSetTimer;
  const enc = new TextEncoder();

  let view: BabelView = emptyView();
  let info: BabelInfo | null = null;
  let connected = false;
  let closed = false;
  let everConnected = false;
  let session: Session | null = null;
  let wake: (() => void) | null = null;
  const listeners = new Set<(e: BabelClientEvent) => void>();
  const waiters = new Set<{ resolve(): void; reject(e: Error): void }>();
  /** Interfaces added at run time, re-added after a babeld restart. */
  const runtime = new Map<string, string>();

  const emit = (e: BabelClientEvent) => {
    for (const l of [...listeners]) {
      try {
        l(e);
      } catch (err) {
        log?.error(`Babel event listener failed on ${e.type}: ${err}`);
      }
    }
  };

  /**
   * A settle-once pair whose timer is armed last: `setTimeout` may run queued microtasks
   * (Deno loads timers lazily), so state must be in place before the timer is created.
   */
  const settleOnce = <T>(
    resolve: (v: T) => void,
    reject: (e: Error) => void,
    onTimeout: () => void,
    ms: number,
  ) => {
    let done = false;
    let cancel = () => {};
    const finish = () => {
      done = true;
      cancel();
    };
    return {
      resolve: (v: T) => {
        if (!done) (finish(), resolve(v));
      },
      reject: (e: Error) => {
        if (!done) (finish(), reject(e));
      },
      arm() {
        const c = setTimer(onTimeout, ms);
        if (done) c();
        else cancel = c;
      },
    };
  };

  /** Queues a line on the session; the answer comes back in order. */
  const send = (s: Session, line: string, timeoutMs: number, window?: Set<string>) =>
    new Promise<BabelReply>((resolve, reject) => {
      if (s.failed) return reject(new BabelUnavailableError(`${where}: ${s.failed}`));
      const word = line.split(" ")[0];
      const p = settleOnce(resolve, reject, () => {
        s.fail(`no answer to "${word}" within ${timeoutMs} ms`);
      }, timeoutMs);
      s.pending.push({ line, window, resolve: p.resolve, reject: p.reject });
      s.writing = s.writing.then(() => s.conn.write(enc.encode(line + "\n"))).catch((e) => {
        s.fail(`cannot write to babeld: ${describeError(e)}`);
      });
      p.arm();
    });

  const onLine = (s: Session, text: string) => {
    const parsed = parseBabelLine(text);
    if (!parsed) {
      if (text !== "") log?.debug(`Ignoring unexpected line from ${where}: ${text.slice(0, 200)}`);
      return;
    }
    switch (parsed.type) {
      case "banner": {
        const i = info ?? { version: "", host: "", myId: "" };
        if (parsed.key === "BABEL") {
          if (!parsed.value.startsWith("1.")) {
            s.fail(`unsupported local protocol "BABEL ${parsed.value}"`);
            return;
          }
          s.sawBanner = true;
        }
        if (parsed.key === "version") i.version = parsed.value;
        if (parsed.key === "host") i.host = parsed.value;
        if (parsed.key === "my-id") i.myId = parsed.value;
        info = i;
        return;
      }
      case "event": {
        applyEvent(view, parsed.event);
        const key = eventKey(parsed.event);
        for (const p of s.pending) p.window?.add(key);
        emit({ type: "update", event: parsed.event });
        return;
      }
      case "reply": {
        const p = s.pending.shift();
        if (!p) {
          log?.debug(`Ignoring unexpected "${text}" from ${where}`);
          return;
        }
        if (p.window && parsed.reply.status === "ok") pruneView(view, p.window);
        p.resolve(parsed.reply);
        return;
      }
    }
  };

  const readLoop = async (s: Session) => {
    const dec = new TextDecoder();
    let partial = "";
    while (!s.failed) {
      let chunk: Uint8Array | null;
      try {
        chunk = await s.conn.read();
      } catch (e) {
        s.fail(`read failed: ${describeError(e)}`);
        return;
      }
      if (chunk === null) {
        s.fail("babeld closed the connection");
        return;
      }
      partial += dec.decode(chunk, { stream: true });
      let nl: number;
      while (!s.failed && (nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        onLine(s, line);
      }
      if (partial.length > MAX_PARTIAL_LINE) s.fail("line too long");
    }
  };

  /** Connects, synchronises with `monitor`, then reads until the connection ends. */
  const runSession = async (
    conn: BabelConnection,
  ): Promise<{ reason: string; synced: boolean }> => {
    let endSession!: () => void;
    const ended = new Promise<void>((r) => endSession = r);
    const s: Session = {
      conn,
      pending: [],
      writing: Promise.resolve(),
      failed: null,
      sawBanner: false,
      fail(reason) {
        if (s.failed) return;
        s.failed = reason;
        connected = false;
        conn.close();
        for (const p of s.pending.splice(0)) {
          p.reject(new BabelUnavailableError(`${where}: ${reason}`));
        }
        endSession();
      },
    };
    session = s;
    info = null;
    const reading = readLoop(s);
    try {
      // The banner ends with "ok" like a command's answer.
      const banner = new Promise<BabelReply>((resolve, reject) => {
        const p = settleOnce(resolve, reject, () => {
          s.fail(`no banner within ${cmdTimeout} ms`);
        }, cmdTimeout);
        s.pending.push({ line: "(banner)", resolve: p.resolve, reject: p.reject });
        p.arm();
      });
      const sync = send(s, "monitor", cmdTimeout, new Set());
      sync.catch(() => {}); // awaited below unless the banner fails first
      await banner;
      if (!s.sawBanner) s.fail('no "BABEL" banner: not babeld\'s local interface?');
      const version = (info as BabelInfo | null)?.version ?? "";
      if (!s.failed && !version.startsWith("babeld-")) {
        log?.warn(`${where} is "${version}", not babeld; trying anyway`);
      }
      const reply = await sync;
      if (reply.status !== "ok") s.fail(`"monitor" refused (${reply.status})`);
      else await replay(s);
    } catch {
      // s.fail() already recorded why.
    }
    const synced = !s.failed;
    if (synced) {
      connected = true;
      const reconnect = everConnected;
      everConnected = true;
      log?.info(`${reconnect ? "Reconnected" : "Connected"} to ${info!.version} at ${where}`);
      for (const w of [...waiters]) w.resolve();
      emit({ type: "connected", info: { ...info! }, reconnect });
    }
    await ended;
    await reading;
    await s.writing;
    session = null;
    return { reason: s.failed!, synced };
  };

  /** Re-adds run-time interfaces babeld does not list (it was restarted). */
  const replay = async (s: Session) => {
    for (const [name, params] of runtime) {
      if (view.interfaces.has(`interface ${name}`)) continue;
      const r = await send(s, `interface ${name} ${params}`, cmdTimeout);
      if (r.status === "ok") log?.info(`Re-added Babel interface ${name} after babeld restart`);
      else log?.warn(`babeld refused to re-add interface ${name} (${r.status})`);
    }
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const p = settleOnce<void>(resolve, () => resolve(), () => {
        wake = null;
        p.resolve();
      }, ms);
      wake = () => {
        wake = null;
        p.resolve();
      };
      p.arm();
    });

  const loop = (async () => {
    let delay = retryMin;
    /** Why the current outage goes on (null while connected): a log line per new reason. */
    let outage: string | null = null;
    while (!closed) {
      let reason: string;
      try {
        const conn = await opts.connect();
        if (closed) {
          conn.close();
          break;
        }
        const end = await runSession(conn);
        reason = end.reason;
        if (end.synced) {
          delay = retryMin;
          outage = null;
        }
      } catch (e) {
        reason = `cannot connect: ${describeError(e)}`;
      }
      if (closed) break;
      // One line per outage, not one per retry (a registry may wait long for its node).
      if (outage === null) {
        log?.warn(
          everConnected
            ? `Lost babeld at ${where} (${reason}); will keep retrying`
            : `No babeld at ${where} yet (${reason}); will connect once it is there`,
        );
      } else if (reason !== outage) {
        log?.debug(`babeld at ${where} still unreachable, now: ${reason}`);
      }
      outage = reason;
      emit({ type: "disconnected", reason, retryInMs: delay });
      await sleep(delay);
      delay = Math.min(retryMax, delay * 2);
    }
  })();

  const waitConnected = (timeoutMs = cmdTimeout) => {
    if (closed) return Promise.reject(new BabelUnavailableError(`${where}: client closed`));
    if (connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = settleOnce<void>(
        (v) => (waiters.delete(w), resolve(v)),
        (e) => (waiters.delete(w), reject(e)),
        () => w.reject(new BabelUnavailableError(`${where}: not reachable within ${timeoutMs} ms`)),
        timeoutMs,
      );
      waiters.add(w);
      w.arm();
    });
  };

  const checkLine = (line: string) => {
    if (/[\r\n]/.test(line) || enc.encode(line + "\n").length > BABEL_LOCAL_LINE_MAX) {
      throw new BabelCommandError(line.slice(0, 80), { status: "bad", message: "invalid line" });
    }
  };

  const command = async (line: string, timeoutMs = cmdTimeout, window?: Set<string>) => {
    checkLine(line);
    await waitConnected(timeoutMs);
    if (!session) throw new BabelUnavailableError(`${where}: not connected`);
    return await send(session, line, timeoutMs, window);
  };

  return {
    get connected() {
      return connected;
    },
    get info() {
      return info ? { ...info } : null;
    },
    view: () => snapshotOf(view),
    waitConnected,
    async dump(timeoutMs = cmdTimeout) {
      const r = await command("dump", timeoutMs, new Set());
      if (r.status !== "ok") throw new BabelCommandError("dump", r);
      return snapshotOf(view);
    },
    command: (line, timeoutMs) => command(line, timeoutMs),
    async addInterface(name, params) {
      checkInterfaceName(name);
      const line = `interface ${name} ${params.trim()}`.trim();
      const r = await command(line);
      if (r.status !== "ok") throw new BabelCommandError(line, r);
      runtime.set(name, params.trim());
    },
    async flushInterface(name) {
      checkInterfaceName(name);
      runtime.delete(name);
      const r = await command(`flush interface ${name}`);
      if (r.status === "ok") return true;
      if (r.status === "no") return false;
      throw new BabelCommandError(`flush interface ${name}`, r);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const w of [...waiters]) w.reject(new BabelUnavailableError(`${where}: client closed`));
      session?.fail("client closed");
      wake?.();
      await loop;
      view = emptyView();
    },
  };
}
