// The node's kernel state (PROTOCOL.md §7.1 steps 4, 8, 10; §8.2; §1.6), made through the
// journaling Platform so that teardown removes exactly what the node added (and, through the
// journal file of the run folder, the next start after a kill -9), and babeld's
// configuration input.

import { runFile } from "../constants.ts";
import type { BabelConfigInput } from "../babel/config.ts";
import type { Logger } from "../log.ts";
import type { NodeOptions } from "../options/node.ts";
import type {
  AddressSpec,
  Change,
  JournalStore,
  Platform,
  RouteSpec,
} from "../../platform/types.ts";
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

/** Files the kernel journal is kept in. */
export interface JournalFiles {
  readText(path: string): Promise<string | null>;
  writeText(path: string, text: string, mode?: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
}

/** The journal at `path`: written to `<path>.tmp` then renamed, so never half written. */
export function journalFile(
  files: JournalFiles,
  path: string,
): JournalStore & { load(): Promise<Change[]> } {
  return {
    async save(changes) {
      await files.writeText(`${path}.tmp`, JSON.stringify(changes) + "\n", 0o600);
      await files.rename(`${path}.tmp`, path);
    },
    async load() {
      const text = await files.readText(path);
      return text === null ? [] : parseJournal(text);
    },
  };
}

/** The changes of a stored journal; anything that is not a change is skipped. */
export function parseJournal(text: string): Change[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(data)) return [];
  const str = (v: unknown) => typeof v === "string" && v !== "";
  return data.filter((c): c is Change => {
    if (typeof c !== "object" || c === null) return false;
    switch (c.kind) {
      case "address":
        return str(c.spec?.address) && str(c.spec?.dev);
      case "route":
        return str(c.spec?.dst);
      case "tap":
        return str(c.name);
      case "sysctl":
        return str(c.key) && typeof c.previous === "string";
      default:
        return false;
    }
  });
}

function changeText(c: Change): string {
  switch (c.kind) {
    case "address":
      return `address ${c.spec.address} on ${c.spec.dev}`;
    case "route": {
      const r = c.spec;
      return [
        "route",
        r.type && r.type !== "unicast" ? r.type : "",
        r.dst,
        r.from ? `from ${r.from}` : "",
        r.via ? `via ${r.via}` : "",
        r.dev ? `dev ${r.dev}` : "",
      ].filter((x) => x).join(" ");
    }
    case "tap":
      return `tap ${c.name}`;
    case "sysctl":
      return `sysctl ${c.key} back to ${c.previous}`;
  }
}

/**
 * Undoes exactly what the previous run journaled (a node killed with -9 leaves its kernel
 * changes behind), then journals this run's changes to the same store. Objects the node did
 * not add (an operator's addresses, routes or taps) are never touched. Returns how many
 * changes it found.
 */
export async function removeLeftovers(
  platform: Platform,
  store: JournalStore & { load(): Promise<Change[]> },
  log: Logger,
): Promise<number> {
  const found = await store.load();
  if (found.length) {
    log.warn(
      `Removing ${found.length} leftover(s) of a previous run: ` +
        found.map(changeText).join(", "),
    );
    const kept = await platform.undoPrevious(found);
    if (kept) log.warn(`${kept} leftover(s) could not be removed; retrying at exit`);
  }
  await platform.persistJournal(store);
  return found.length;
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
      config: runFile(o.run, "babeldConfig"),
      socket: runFile(o.run, "babeldSocket"),
      state: `${o.state}/babeld.state`,
      log: `${o.log}/babeld.log`,
    },
  };
}
