// The node's desired kernel state (PROTOCOL.md §7.1 steps 8-10, §8.2, §1.6): each part of the
// node says what it wants (its address and the network's unreachable route, the IPv4 payload,
// the taps of its servers, its client tunnels), and the merged state goes to the Kernel,
// which journals every change before making it. Teardown applies the empty state.

import type { Identity } from "./identity.ts";
import { addressKey, routeKey } from "../cidr.ts";
import {
  type AddressSpec,
  EMPTY_KERNEL_STATE,
  type Kernel,
  type KernelState,
  type RouteSpec,
} from "../kernel.ts";
import type { Ipv4Payload } from "./settings.ts";

/** The node IP on the main interface: `<node IP>/<len(subnet)>` (§7.1 step 10). */
export function nodeAddress(identity: Identity, mainInterface: string): AddressSpec {
  return { address: `${identity.ip}/${identity.subnetLength}`, dev: mainInterface };
}

/** `unreachable <network>` (§7.1 step 10). */
export function networkRoute(identity: Identity): RouteSpec {
  return { type: "unreachable", dst: identity.networkCidr };
}

/** IPv4 payload state (§1.6, §8.2). */
export function ipv4State(
  ipv4: Ipv4Payload,
  mainInterface: string,
  clientTunnels: boolean,
): Partial<KernelState> {
  const routes: RouteSpec[] = [{ type: "unreachable", dst: ipv4.network, proto: "static" }];
  const addresses: AddressSpec[] = [];
  if (!clientTunnels) {
    addresses.push({ address: ipv4.address, dev: mainInterface });
    if (mainInterface === "lo") {
      routes.push({ type: "unreachable", dst: ipv4.block, proto: "static" });
    }
  }
  return { routes, addresses };
}

/** Several parts of a desired state as one; an object wanted by two parts appears once. */
export function mergeKernelStates(parts: Iterable<Partial<KernelState>>): KernelState {
  const taps = new Set<string>();
  const drained = new Set<string>();
  const addresses = new Map<string, AddressSpec>();
  const routes = new Map<string, RouteSpec>();
  for (const p of parts) {
    for (const t of p.taps ?? []) taps.add(t);
    for (const t of p.drained ?? []) drained.add(t);
    for (const a of p.addresses ?? []) addresses.set(addressKey(a), a);
    for (const r of p.routes ?? []) routes.set(routeKey(r), r);
  }
  return {
    taps: [...taps],
    addresses: [...addresses.values()],
    routes: [...routes.values()],
    drained: [...drained],
  };
}

/** Parts of the node's kernel state, in the order start-up sets them. */
export type KernelPart = "ipv4" | "servers" | "node" | "tunnels";

/** The node's desired kernel state, part by part. */
export class DesiredKernel {
  readonly #kernel: Kernel;
  readonly #parts = new Map<KernelPart, Partial<KernelState>>();

  constructor(kernel: Kernel) {
    this.#kernel = kernel;
  }

  /** Sets one part and makes the whole state true; throws when a change failed. */
  set(part: KernelPart, state: Partial<KernelState>): Promise<void> {
    this.#parts.set(part, state);
    return this.#kernel.apply(this.state());
  }

  /** The whole desired state. */
  state(): KernelState {
    return mergeKernelStates(this.#parts.values());
  }

  /** Removes everything the node made (teardown). */
  clear(): Promise<void> {
    this.#parts.clear();
    return this.#kernel.apply(EMPTY_KERNEL_STATE);
  }
}
