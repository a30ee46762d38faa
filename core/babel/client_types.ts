// Types of the babeld local-interface client (core/babel/local.ts) and its transport seam.

import type { BabelEvent, BabelReply } from "./parse.ts";
import type { BabelSnapshot } from "./view.ts";
import type { Logger } from "../log.ts";

/** A byte stream to babeld's local socket (see platform/babel_socket.ts). */
export interface BabelConnection {
  /** Next bytes received; null at end of stream. */
  read(): Promise<Uint8Array | null>;
  /** Sends all of `data`. */
  write(data: Uint8Array): Promise<void>;
  /** Closes the stream; pending reads end. Safe to call twice. */
  close(): void;
}

/** Opens a new connection to babeld. */
export type BabelConnector = () => Promise<BabelConnection>;

/** What babeld says about itself when a client connects. */
export interface BabelInfo {
  /** e.g. "babeld-1.12.1". */
  version: string;
  host: string;
  /** Router id (EUI-64 text). */
  myId: string;
}

/** Something that happened to the connection or to babeld's tables. */
export type BabelClientEvent =
  | { type: "connected"; info: BabelInfo; reconnect: boolean }
  | { type: "disconnected"; reason: string; retryInMs: number }
  | { type: "update"; event: BabelEvent };

/** Timer seam: runs `fn` after `ms`, returns a function cancelling it. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

/** Options of {@link createBabelClient}. */
export interface BabelClientOptions {
  connect: BabelConnector;
  /** Names the socket in log lines, e.g. "/var/run/re6stnet/babeld.sock". */
  where?: string;
  log?: Logger;
  /** First reconnection delay (default 100 ms), doubled up to retryMaxMs (default 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Time babeld has to answer a command or the banner (default 10 s). */
  commandTimeoutMs?: number;
  setTimer?: SetTimer;
}

/** A live view of one babeld. */
export interface BabelClient {
  /** True while synchronised with babeld. */
  readonly connected: boolean;
  /** Banner of the current (or last) babeld. */
  readonly info: BabelInfo | null;
  /** Copy of the current view (possibly stale while disconnected). */
  view(): BabelSnapshot;
  /** Resolves once synchronised; rejects after `timeoutMs` or when the client is closed. */
  waitConnected(timeoutMs?: number): Promise<void>;
  /** Re-reads babeld's tables and returns them (fails if babeld is unreachable in time). */
  dump(timeoutMs?: number): Promise<BabelSnapshot>;
  /** Sends one configuration line and returns babeld's answer. */
  command(line: string, timeoutMs?: number): Promise<BabelReply>;
  /** Adds a Babel interface at run time (`interface <name> <params>`); kept across restarts. */
  addInterface(name: string, params: string): Promise<void>;
  /** Removes an interface (`flush interface <name>`); false if babeld did not know it. */
  flushInterface(name: string): Promise<boolean>;
  /** Calls `listener` for every event until the returned function is called. */
  subscribe(listener: (e: BabelClientEvent) => void): () => void;
  /** Disconnects for good. */
  close(): Promise<void>;
}

/** babeld could not be reached or did not answer as expected. */
export class BabelUnavailableError extends Error {
  override name = "BabelUnavailableError";
}

/** babeld refused a command (`no` or `bad`). */
export class BabelCommandError extends Error {
  override name = "BabelCommandError";
  constructor(readonly command: string, readonly reply: BabelReply) {
    const why = reply.status === "no" ? `no${reply.message ? ` (${reply.message})` : ""}` : "bad";
    super(`babeld refused "${command}": ${why}`);
  }
}
