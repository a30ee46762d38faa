// What a node is built from (STYLE.md 5): every seam to the machine, passed in by
// platform/node_parts.ts (the real ones) or by tests (recorders and fakes). One kernel, one
// registry client, one babeld connection, one peer socket.

import type { BabelClient } from "../babel/local.ts";
import type { BabelConfig } from "../babel/config.ts";
import type { Clock } from "../clock.ts";
import type { GeoIpDatabase } from "../geoip.ts";
import type { Kernel } from "../kernel.ts";
import type { Logger } from "../log.ts";
import type { ConnectAnswer, HookEvent } from "../openvpn/hooks.ts";
import type { NodeCache } from "./cache.ts";
import type { Identity, ReadFile } from "./identity.ts";
import type { ManagedProcess } from "./supervisor.ts";
import type { NodeRegistry, SyncFiles } from "./registry_sync.ts";
import type { PortMapper } from "../upnp/port_mapper.ts";
import type { StatusDocument } from "../status/document.ts";

/** Files and folders the node touches. */
export interface NodeFiles extends SyncFiles {
  /** Synchronous whole-file read (identity files); throws the platform's error. */
  readFile: ReadFile;
  /** Text of a file, or null when it does not exist. */
  readText(path: string): Promise<string | null>;
  /** Creates a folder and its parents; `mode` applies to the last one. */
  mkdir(path: string, mode?: number): Promise<void>;
  /** Removes a file or a folder tree; nothing to do when absent. */
  remove(path: string): Promise<void>;
}

/** Processes of the machine (stale children after a kill -9). */
export interface NodeHost {
  /** Our own pid. */
  readonly pid: number;
  /** Program name of a live process (`/proc/<pid>/comm`), or null when it does not exist. */
  processName(pid: number): Promise<string | null>;
  /**
   * What tells a process apart from a later one with the same pid, unchanged by exec: its
   * start time (`/proc/<pid>/stat` field 22); null when it does not exist.
   */
  processStart(pid: number): Promise<string | null>;
  /** Every process of the machine: pid, start time, program name, command line (spaces). */
  listProcesses(): Promise<{ pid: number; start: string; name: string; cmdline: string }[]>;
  kill(pid: number, signal: "SIGTERM" | "SIGKILL"): void;
  /** Environment variable PATH (given to OpenVPN hooks). */
  readonly path: string;
  /** Our own memory, bytes: resident set and V8 heap (`Deno.memoryUsage()`). */
  memory(): StatusDocument["memory"];
}

/** babeld as the node uses it. */
export interface NodeBabel {
  /** Writes the configuration and starts babeld; resolves once its socket answers. */
  start(config: BabelConfig): Promise<ManagedProcess>;
  /** The node's one local-interface client (connects and reconnects by itself). */
  client(socket: string): BabelClient;
}

/** OpenVPN and its hooks. */
export interface NodeOpenVpn {
  /** Starts `openvpn <args>`; `logFile` is its `--log-append` file, if any. */
  start(name: string, args: readonly string[], logFile?: string): Promise<ManagedProcess>;
  /** Writes the hook program OpenVPN runs (reports to `socket`); returns its path. */
  writeHookScript(scriptPath: string, socket: string): Promise<string>;
  /** Serves hook events on `socket` until closed. */
  serveHooks(
    socket: string,
    handler: (ev: HookEvent) => ConnectAnswer | void | Promise<ConnectAnswer | void>,
  ): Promise<{ close(): Promise<void> }>;
}

/**
 * `--up` and `--daemon` commands (§8.6), each in a process group of its own so that stopping
 * one also stops what it started.
 */
export interface NodeShell {
  /**
   * Runs `sh -c cmd` with `env` added; resolves with its exit code. When `signal` aborts,
   * the command and everything it started are killed and the promise rejects.
   */
  run(cmd: string, env: Record<string, string>, signal?: AbortSignal): Promise<number>;
  /** Starts `sh -c cmd` in the background with `env` added; stop() reaches its children. */
  spawn(cmd: string, env: Record<string, string>): ManagedProcess;
}

/** The node's UDP socket of the peer protocol (platform/udp.ts fits). */
export interface PeerSocket {
  send(host: string, port: number, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Everything `new Node(...)` needs besides its options. */
export interface NodeParts {
  /** The kernel (addresses, routes, taps, drained taps), journaled in the run folder. */
  kernel: Kernel;
  /** The registry client, built once the identity (key, CA) is known: one HMAC session. */
  registry(identity: Identity): NodeRegistry;
  babel: NodeBabel;
  openvpn: NodeOpenVpn;
  /**
   * Binds UDP 326 and feeds every datagram to `onDatagram`; `onError` hears of failed
   * receives (the socket keeps receiving) and failed handlers.
   */
  peerSocket(
    onDatagram: (host: string, port: number, bytes: Uint8Array) => Promise<void>,
    onError: (error: Error) => void,
  ): PeerSocket;
  shell: NodeShell;
  files: NodeFiles;
  host: NodeHost;
  /** Opens `<state>/cache.db`. */
  openCache(path: string): NodeCache;
  /**
   * Serves the control socket at `path` (platform/control.ts): one JSON request, one JSON
   * answer or a stream of them (core/status/control.ts); `signal` aborts when the client goes
   * away. Absent: the node has no control socket.
   */
  serveControl?(
    path: string,
    handler: (request: Record<string, unknown>, signal: AbortSignal) => unknown,
  ): Promise<{ close(): Promise<void> }>;
  /**
   * Opens the GeoIP database named by GEOIP2_MMDB (platform/geoip.ts, loaded only then);
   * absent when the variable is unset. Throws when the file cannot be used.
   */
  openGeoIp?(): Promise<GeoIpDatabase>;
  /** The LAN's UPnP gateway client (absent: the node never maps ports). */
  portMapper?(): PortMapper;
  clock: Clock;
  log: Logger;
  /** Randomness of the tunnel choices (default Math.random). */
  random?: () => number;
}
