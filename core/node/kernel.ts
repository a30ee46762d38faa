// The node's kernel state (PROTOCOL.md §7.1 steps 4, 8, 10; §8.2; §1.6), made through the
// journaling Platform so that teardown removes exactly what the node added, and babeld's
// configuration input.

import type { BabelConfigInput } from "../babel/config.ts";
import type { Logger } from "../log.ts";
import type { NodeOptions } from "../options/node.ts";
import type { AddressSpec, Platform, RouteSpec } from "../../platform/types.ts";
import type { Identity } from "./identity.ts";
import type { EffectiveSettings, Ipv4Payload } from "./settings.ts";

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
): { routes: RouteSpec[]; addresses: AddressSpec[] } {
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

/**
 * Removes what a node killed with -9 left behind: addresses and routes inside the network
 * (and the IPv4 payload network), and re6st tap devices. Returns how many objects it removed.
 */
export async function removeLeftovers(
  platform: Platform,
  networks: string[],
  log: Logger,
): Promise<number> {
  const found = await platform.listLeftovers({ networks });
  const count = found.addresses.length + found.routes.length + found.taps.length;
  if (count === 0) return 0;
  const what = [
    ...found.addresses.map((a) => `address ${a.address} on ${a.dev}`),
    ...found.routes.map((r) => `route ${r.type ?? ""} ${r.dst}${r.from ? ` from ${r.from}` : ""}`),
    ...found.taps.map((t) => `tap ${t}`),
  ].map((s) => s.replace(/ +/g, " "));
  log.warn(`Removing ${count} leftover(s) of a previous run: ${what.join(", ")}`);
  await platform.removeLeftovers(found);
  return count;
}

/** babeld's configuration input for this node (§8.3 as adapted in core/babel/config.ts). */
export function babelInput(
  o: Pick<NodeOptions, "gateway" | "babelArgs" | "run" | "state" | "log">,
  s: EffectiveSettings,
  id: Identity,
  tunnelInterfaces: string[],
  interfaces: string[],
): BabelConfigInput {
  return {
    network: id.network,
    prefix: id.prefix,
    helloS: s.helloS,
    babelDefault: s.babelDefault,
    hmacSign: s.hmacSign,
    hmacAccept: s.hmacSign ? s.hmacAccept : undefined,
    gateway: o.gateway,
    ipv4: s.ipv4 ? { address: s.ipv4.address, length: s.ipv4.plen } : undefined,
    tunnelInterfaces,
    interfaces,
    extraArgs: o.babelArgs,
    paths: {
      config: `${o.run}/babeld.conf`,
      socket: `${o.run}/babeld.sock`,
      state: `${o.state}/babeld.state`,
      log: `${o.log}/babeld.log`,
    },
  };
}
