// The node (PROTOCOL.md §7.1): one life from start-up (startup.ts) to teardown (teardown.ts),
// asked to stop, hang up or restart by signals and by its own parts, and its status.

import type { NodeOptions } from "../options/node.ts";
import type { StatusDocument } from "../status/document.ts";
import { DesiredKernel } from "./kernel_state.ts";
import type { NodeParts } from "./parts.ts";
import type { NodeRuntime } from "./runtime.ts";
import { startUp } from "./startup.ts";
import { errorRing, type NodeState, nodeStatus, tapErrors } from "./status.ts";
import { tearDown } from "./teardown.ts";
import { ServedBook } from "./tunnels/served.ts";

/** Why a node's run ended. */
export type NodeExit =
  /** SIGINT/SIGTERM: exit status 0. */
  | { kind: "stopped"; reason: string }
  /** SIGHUP/SIGUSR2: exit status 255 (§7.1). */
  | { kind: "hangup"; reason: string }
  /** The node must start again (renewal, new network parameters, own certificate revoked). */
  | { kind: "restart"; reason: string };

/** One re6st node: `await new Node(options, parts).run()`. */
export class Node {
  readonly options: NodeOptions;
  readonly #rt: NodeRuntime;
  #exit: NodeExit | null = null;

  constructor(options: NodeOptions, parts: NodeParts) {
    this.options = options;
    const errors = errorRing();
    this.#rt = {
      options,
      parts,
      log: tapErrors(parts.log, errors, () => parts.clock.now()),
      errors,
      end: new AbortController(),
      kernel: new DesiredKernel(parts.kernel),
      served: new ServedBook(),
      startedAt: parts.clock.now(),
      state: "starting",
      identity: null,
      settings: null,
      cache: null,
      registry: null,
      record: null,
      hookServer: null,
      control: null,
      servers: [],
      babeld: null,
      babel: null,
      babelSignKey: undefined,
      manager: null,
      clientMode: null,
      own: null,
      upnp: null,
      protocol: null,
      socket: null,
      loops: [],
      daemons: [],
      nextRenewal: null,
      contact: { ok: null, at: null, error: null },
      restart: (reason) => this.restart(reason),
      status: () => this.status(),
    };
  }

  /** Where the node is in its life. */
  get state(): NodeState {
    return this.#rt.state;
  }

  /** Asks the node to stop (SIGINT/SIGTERM); start-up is interrupted if still running. */
  stop(reason = "stop requested"): void {
    this.#finish({ kind: "stopped", reason });
  }

  /** Asks the node to stop with status 255 (SIGHUP/SIGUSR2, §7.1). */
  hangup(reason = "hangup"): void {
    this.#finish({ kind: "hangup", reason });
  }

  /** Asks the node to start again from scratch (the reference re-executes itself). */
  restart(reason: string): void {
    this.#finish({ kind: "restart", reason });
  }

  #finish(exit: NodeExit): void {
    if (this.#exit) return;
    this.#exit = exit;
    this.#rt.end.abort();
  }

  /** The node's status document (docs/status.md). */
  status(): StatusDocument {
    const rt = this.#rt;
    const p = rt.parts;
    return nodeStatus({
      state: rt.state,
      pid: p.host.pid,
      startedAt: rt.startedAt,
      now: p.clock.now(),
      identity: rt.identity,
      settings: rt.settings,
      version: rt.cache?.version() ?? null,
      cacheSize: rt.cache?.peerCount() ?? 0,
      registry: { url: this.options.registry, ...rt.contact },
      nextRenewal: rt.nextRenewal,
      children: [
        ...(rt.babeld ? [rt.babeld.info()] : []),
        ...rt.servers.map((s) => s.info()),
        ...(rt.clientMode?.children() ?? []),
        ...(rt.manager?.children() ?? []),
      ],
      tunnels: (costOf) => [
        ...(rt.clientMode?.status() ?? []),
        ...(rt.manager?.status(costOf) ?? []),
      ],
      babel: rt.babel,
      upnp: rt.upnp?.forwarding.status() ?? null,
      gateway: this.options.gateway,
      memory: p.host.memory(),
      errors: rt.errors.entries,
    });
  }

  /**
   * Runs the node until it is asked to stop or restart; always tears down what it set up.
   * Throws (after teardown) when start-up fails; the error says what and why in one line.
   */
  async run(): Promise<NodeExit> {
    const rt = this.#rt;
    try {
      await startUp(rt);
      rt.state = "running";
      rt.log.info(
        `Node ${rt.identity!.cn} is up: ${rt.identity!.ip} on ${this.options.mainInterface}`,
      );
      await new Promise<void>((resolve) => {
        if (rt.end.signal.aborted) resolve();
        rt.end.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    } catch (e) {
      // Once a stop was asked for, whatever start-up was doing is abandoned, not an error.
      if (!this.#exit) {
        await this.#tearDown();
        throw e;
      }
    }
    rt.log.info(`Stopping: ${this.#exit!.reason}`);
    await this.#tearDown();
    return this.#exit!;
  }

  async #tearDown(): Promise<void> {
    this.#rt.state = "stopping";
    await tearDown(this.#rt);
    this.#rt.state = "stopped";
  }
}
