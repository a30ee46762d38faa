// Meaning of the message codes of authenticated peer data and relay requests (PROTOCOL.md §6.5).
//
// `handleMessage` turns one request into an optional answer, calling into the node through the
// injected handlers; framing, sessions and replies are the business of protocol.ts.

import { cnFromPrefix, stripCountry } from "../addressing.ts";
import type { Bits } from "../addressing.ts";
import { bytesEqual, compareBytes } from "../crypto.ts";
import { Code, COUNTRY_MIN_PROTOCOL, softwareInfo } from "../constants.ts";
import type { Logger } from "../log.ts";
import type { Session } from "./session.ts";

/** What the node provides to answer and react to peer messages (§6.5). All optional. */
export interface PeerHandlers {
  /**
   * Our address list (§1.5, §7.10) for the peer `prefix` (null: the registry, for any
   * newcomer), country fields included; "" when none.
   */
  addressList?(prefix: Bits | null): string;
  /** A peer sent its address list in answer to our request (code 1). */
  onAddress?(prefix: Bits, addressList: string): void;
  /** A peer gossiped a newer valid version blob, already adopted as ours: fetch in 1 s (§7.7). */
  onNewerVersion?(blob: Uint8Array, from: Bits): void;
  /** The local registry announced a new configuration through the relay: fetch in 1 s. */
  onRegistryVersion?(): void;
  /** Code 2: the client side of a tunnel asks us (server side) to lock our side (§7.6). */
  onTunnelKillRequest?(prefix: Bits): void;
  /** Code 3: the server side says its side is locked (§7.6). */
  onTunnelKillResponse?(prefix: Bits): void;
  /** Code 4 answer: "<software version>, <platform string>". */
  nodeInfo?(): string;
  /** Code 5 answer: "<n>[ <CN> …]" (§6.5). */
  topology?(): string;
}

/** State and services the message handlers work with. */
export interface MessageContext {
  handlers: PeerHandlers;
  log: Logger;
  /** Our node prefix. */
  prefix: Bits;
  /** Prefix of the registry node, when known (code 5 and 7 rules). */
  registryPrefix(): Bits | null;
  /** Our current network version blob. */
  getVersion(): Uint8Array | null;
  /** Adopts a newer version blob as ours. */
  adoptVersion(blob: Uint8Array): void;
  /** Whether a version blob carries a valid CA signature (§4.8). */
  verifyVersion(blob: Uint8Array): boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A text answer, or null when empty (an empty answer means "no answer", §6.4). */
function textAnswer(text: string | undefined): Uint8Array | null {
  return text ? enc.encode(text) : null;
}

/**
 * Handles one request or answer (`code` without forward flag, `body` after the code byte) from
 * `peer`, or from the local registry when `peer` is null; returns the answer, or null (§6.5).
 */
export function handleMessage(
  ctx: MessageContext,
  peer: Session | null,
  code: number,
  body: Uint8Array,
): Uint8Array | null {
  const from = peer ? peer.prefix : "registry";
  switch (code) {
    case Code.VERSION:
      if (!peer) {
        ctx.log.debug("registry announced a new network configuration; will fetch it");
        ctx.handlers.onRegistryVersion?.();
        return null;
      }
      return handleVersion(ctx, peer, body);
    case Code.ADDRESS:
      if (body.length === 0) {
        const list = ctx.handlers.addressList?.(peer?.prefix ?? null) ?? "";
        return textAnswer(peer && peer.protocol < COUNTRY_MIN_PROTOCOL ? stripCountry(list) : list);
      }
      if (peer) ctx.handlers.onAddress?.(peer.prefix, dec.decode(body));
      return null;
    case Code.KILL_REQUEST:
      if (peer) ctx.handlers.onTunnelKillRequest?.(peer.prefix);
      return null;
    case Code.KILL_RESPONSE:
      if (peer) ctx.handlers.onTunnelKillResponse?.(peer.prefix);
      return null;
    case Code.NODE_INFO:
      if (body.length !== 0) return null;
      return textAnswer(ctx.handlers.nodeInfo?.() ?? softwareInfo());
    case Code.TOPOLOGY:
      if (body.length !== 0) return null;
      if (peer && peer.prefix !== ctx.registryPrefix()) {
        ctx.log.debug(`topology request from ${from} ignored: not the registry node`);
        return null;
      }
      return textAnswer(ctx.handlers.topology?.());
    case Code.LOG:
      if (peer && ctx.prefix === ctx.registryPrefix()) {
        ctx.log.info(`${cnFromPrefix(peer.prefix)}: ${dec.decode(body)}`);
      }
      return null;
    default:
      ctx.log.debug(`unknown message code ${code} from ${from} ignored`);
      return null;
  }
}

/** Code 0 from a peer: compare, verify, answer with ours or adopt theirs (§6.5, §7.7). */
function handleVersion(ctx: MessageContext, peer: Session, blob: Uint8Array): Uint8Array | null {
  const ours = ctx.getVersion();
  if (ours && bytesEqual(blob, ours)) {
    peer.version = ours;
    return null;
  }
  if (!ctx.verifyVersion(blob)) {
    ctx.log.debug(`invalid network version from ${peer.prefix} ignored`);
    return null;
  }
  if (ours && compareBytes(blob, ours) < 0) {
    peer.version = ours;
    return ours;
  }
  ctx.adoptVersion(blob);
  peer.version = blob;
  ctx.log.info(`newer network version from ${peer.prefix}; will fetch the configuration`);
  ctx.handlers.onNewerVersion?.(blob, peer.prefix);
  return null;
}
