// The running node's state (PROTOCOL.md §7.1) as plain data: what start-up has brought up so
// far, read by the status and undone by the teardown; and the small helpers both share.

import type { BabelClient } from "../babel/local.ts";
import { ovpnLogFile } from "../openvpn/args.ts";
import type { Logger } from "../log.ts";
import type { NodeOptions } from "../options/node.ts";
import type { PeerProtocol } from "../peer/protocol.ts";
import type { StatusDocument } from "../status/document.ts";
import type { OwnAddresses } from "./addresses.ts";
import type { NodeCache } from "./cache.ts";
import { type Identity, loadIdentity } from "./identity.ts";
import type { DesiredKernel } from "./kernel_state.ts";
import type { NodeParts, PeerSocket } from "./parts.ts";
import type { ChildRecord } from "./pids.ts";
import type { NodeRegistry, SyncContext } from "./registry_sync.ts";
import type { EffectiveSettings } from "./settings.ts";
import type { ErrorRing, NodeState } from "./status.ts";
import type { ManagedProcess, Supervised } from "./supervisor.ts";
import type { ClientMode } from "./tunnels/client_mode.ts";
import type { TunnelManager } from "./tunnels/manager.ts";
import type { ServedBook } from "./tunnels/served.ts";
import type { UpnpForwarding, UpnpResult } from "../upnp/forwarding.ts";

/** Everything one life of the node holds; null until start-up made it. */
export interface NodeRuntime {
  readonly options: NodeOptions;
  readonly parts: NodeParts;
  /** The node's logger (errors and warnings also go to `errors`). */
  readonly log: Logger;
  readonly errors: ErrorRing;
  /** Aborted when the node is asked to stop or restart, or start-up failed. */
  readonly end: AbortController;
  readonly kernel: DesiredKernel;
  readonly served: ServedBook;
  readonly startedAt: number;
  state: NodeState;
  identity: Identity | null;
  settings: EffectiveSettings | null;
  cache: NodeCache | null;
  registry: NodeRegistry | null;
  record: ChildRecord | null;
  hookServer: { close(): Promise<void> } | null;
  control: { close(): Promise<void> } | null;
  servers: Supervised[];
  babeld: Supervised | null;
  babel: BabelClient | null;
  /** The key babeld signs with now (it changes at a rotation's switch time, babel.ts). */
  babelSignKey: Uint8Array | undefined;
  manager: TunnelManager | null;
  clientMode: ClientMode | null;
  own: OwnAddresses | null;
  /** UPnP port forwarding, when the node maps its IPv4 ports, and how its start went. */
  upnp: { forwarding: UpnpForwarding; started: Promise<UpnpResult> } | null;
  protocol: PeerProtocol | null;
  socket: PeerSocket | null;
  /** The overlay's loops (tunnel manager, configuration updates, country lookup). */
  loops: Promise<unknown>[];
  daemons: ManagedProcess[];
  /** When the certificate or the CA is due for renewal (ms). */
  nextRenewal: number | null;
  /** Outcome of the last exchange with the registry. */
  contact: { ok: boolean | null; at: number | null; error: string | null };
  /** Asks the node to start again. */
  restart(reason: string): void;
  /** The node's status document. */
  status(): StatusDocument;
}

export function sync(rt: NodeRuntime): SyncContext {
  return {
    registry: rt.registry!,
    cache: rt.cache!,
    clock: rt.parts.clock,
    log: rt.log,
    signal: rt.end.signal,
    onContact: (ok, error) => {
      rt.contact = { ok, at: rt.parts.clock.now(), error: error ?? null };
    },
  };
}

export function loadNodeIdentity(rt: NodeRuntime): Identity {
  const o = rt.options;
  return loadIdentity(
    { ca: o.ca, cert: o.cert, key: o.key },
    rt.parts.files.readFile,
    new Date(rt.parts.clock.now()),
  );
}

/** Networks whose leftovers a crashed predecessor may have left (IPv6, IPv4 payload). */
export function leftoverScope(rt: NodeRuntime): { networks: string[] } {
  const ipv4 = rt.settings?.ipv4?.network ?? rt.cache?.config().ipv4;
  return {
    networks: [rt.identity!.networkCidr, ...(typeof ipv4 === "string" ? [ipv4] : [])],
  };
}

/** Starts one OpenVPN process and records its pid for the stale-process check. */
export async function startOpenVpn(
  rt: NodeRuntime,
  name: string,
  args: readonly string[],
): Promise<ManagedProcess> {
  const logFile = rt.options.ovpnlog ? ovpnLogFile(rt.options.log, name) : undefined;
  const proc = await rt.parts.openvpn.start(name, args, logFile);
  track(rt, proc, "openvpn");
  return proc;
}

export function track(rt: NodeRuntime, proc: ManagedProcess, name: string): void {
  const rec = rt.record;
  if (!rec) return;
  rec.add(proc.pid, name).catch(() => {});
  proc.exited.then(() => rec.remove(proc.pid)).catch(() => {});
}
