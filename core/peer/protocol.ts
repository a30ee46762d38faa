// The peer protocol engine (PROTOCOL.md §6): turns incoming datagrams into session changes,
// callbacks and outgoing datagrams. No I/O of its own: the socket and the clock are injected.

import { bitsInNetwork, nodeIp } from "../addressing.ts";
import type { Bits } from "../addressing.ts";
import { bytesEqual, compareBytes, hmacSha1, sha1, timeSecret } from "../crypto.ts";
import type { PrivateKey } from "../crypto.ts";
import type { Certificate } from "../cert.ts";
import { verifyVersion } from "../netconfig/version.ts";
import { PEER_PORT, PROTOCOL0_IGNORED_FROM, PROTOCOL_VERSION } from "../constants.ts";
import { describeError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import {
  concatBytes,
  decodeData,
  decodeHandshake,
  decodeRelay,
  encodeData,
  encodeHello0,
  encodeHello1,
  encodeRelay,
  FORWARD_FLAG,
  HANDSHAKE_MAX_SEQ,
  readSeq,
} from "./frame.ts";
import type { Hello0, Hello1 } from "./frame.ts";
import { newSecret, openHello2, sealHello2 } from "./handshake.ts";
import { handleMessage } from "./messages.ts";
import type { MessageContext, PeerHandlers } from "./messages.ts";
import { caCertChecker, checkPeerCert, PeerTable } from "./peers.ts";
import type { CertChecker } from "./peers.ts";
import {
  acceptPeerSecret,
  isConnected,
  isFresh,
  nextTxSeq,
  noteReceived,
  noteSent,
  startOwnSecret,
  takeHello0,
} from "./session.ts";
import type { Session } from "./session.ts";

/** Sends one datagram; errors are logged by the caller. */
export type SendDatagram = (host: string, port: number, bytes: Uint8Array) => void | Promise<void>;

/** Where to send datagrams for a peer. */
export interface Endpoint {
  host: string;
  port: number;
}

/** Everything a PeerProtocol needs from the node. */
export interface PeerProtocolOptions {
  /** Network bit-string (§1.1) and our node prefix (§1.2). */
  network: Bits;
  prefix: Bits;
  /** Our certificate (DER) and private key. */
  cert: Uint8Array;
  key: PrivateKey;
  /** The CA: peer certificates and version blobs are checked against it (§3.6, §4.8). */
  ca: Certificate;
  /** Whether a certificate serial is in the CRL (§3.7); read at each handshake. */
  isRevoked(serial: bigint): boolean;
  /** Overrides the strict peer certificate validation (default: against `ca` at clock time). */
  checkCert?: CertChecker;
  /** Overrides the version blob check (default: CA signature, §4.8). */
  verifyVersion?: (blob: Uint8Array) => boolean;
  /** Our current network version blob, if any (§4.8). */
  version?: Uint8Array | null;
  send: SendDatagram;
  clock: Clock;
  log: Logger;
  handlers?: PeerHandlers;
  /** Network min_protocol; protocol-0 peers are ignored from 7 on (Q15). Default 1. */
  minProtocol?: () => number;
  /** Prefix of the registry node, when known (codes 5 and 7). */
  registryPrefix?: () => Bits | null;
  /** UDP port peers listen on (default 326; tests use others). */
  port?: number;
  /** Where a peer is reached; default `[node IP]:port` (§1.4). Tests override it. */
  peerEndpoint?: (prefix: Bits) => Endpoint;
  /** Protocol number we announce (default 10). */
  protocol?: number;
}

/** What status displays need to know about a peer. */
export interface PeerInfo {
  prefix: Bits;
  connected: boolean;
  protocol: number;
  /** notAfter of its certificate (ms), null when we have none. */
  certNotAfter: number | null;
  /** Last version blob exchanged, null if none. */
  version: Uint8Array | null;
}

const RELAY_HOST = "::1";
const EMPTY = new Uint8Array(0);

/** The peer protocol of one node (§6): sessions, handshakes, messages and the ::1 relay. */
export class PeerProtocol {
  readonly prefix: Bits;
  readonly #o: PeerProtocolOptions;
  readonly #peers: PeerTable;
  readonly #fingerprint: Uint8Array;
  readonly #protocol: number;
  readonly #ctx: MessageContext;
  readonly #checkCert: CertChecker;
  #version: Uint8Array | null;
  #forward: Endpoint | null = null;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: PeerProtocolOptions) {
    this.#o = options;
    this.prefix = options.prefix;
    this.#protocol = options.protocol ?? PROTOCOL_VERSION;
    this.#fingerprint = sha1(options.cert);
    this.#version = options.version ?? null;
    this.#peers = new PeerTable(this.#timeSecret());
    this.#checkCert = options.checkCert ?? caCertChecker(options.ca, () => options.clock.now());
    const verify = options.verifyVersion ??
      ((blob: Uint8Array) => verifyVersion(options.ca.publicKey, blob) !== null);
    this.#ctx = {
      handlers: options.handlers ?? {},
      log: options.log,
      prefix: options.prefix,
      registryPrefix: () => options.registryPrefix?.() ?? null,
      getVersion: () => this.#version,
      adoptVersion: (blob) => {
        this.#version = blob;
      },
      verifyVersion: verify,
    };
  }

  /** Our current network version blob. */
  get version(): Uint8Array | null {
    return this.#version;
  }

  /** Replaces our current version blob (after fetching a new configuration, §7.7). */
  setVersion(blob: Uint8Array | null): void {
    this.#version = blob;
  }

  /**
   * Handles one received datagram from `host`:`port` (§6.1). Datagrams are processed one at a
   * time in arrival order; the returned promise settles when this one has been handled.
   */
  receive(host: string, port: number, bytes: Uint8Array): Promise<void> {
    const run = () =>
      this.#receive(host, port, bytes).catch((e) =>
        this.#o.log.warn(`datagram from [${host}]:${port} not handled: ${describeError(e)}`)
      );
    return this.#queue = this.#queue.then(run);
  }

  /**
   * Sends `code` ‖ `payload` to peer `prefix` if it is connected; otherwise sends a hello0
   * (rate-limited) and drops the message (§6.4). Returns whether the message was sent.
   */
  sendTo(prefix: Bits, code: number, payload: Uint8Array = EMPTY): boolean {
    return this.#sendTo(prefix, concatBytes(Uint8Array.of(code), payload));
  }

  /** Starts a handshake with `prefix` if it is not connected (§6.4); true when connected. */
  probe(prefix: Bits): boolean {
    return this.#sendTo(prefix, null);
  }

  /** Whether `prefix` has a live session (§6.4). */
  isConnected(prefix: Bits): boolean {
    const s = this.#peers.get(prefix);
    return s !== undefined && isConnected(s, this.#o.clock.now());
  }

  /**
   * Sends our version blob to every listed peer whose last known version is older (§7.7);
   * peers without a session get a hello0 instead.
   */
  gossipVersion(prefixes: Iterable<Bits>): void {
    const ours = this.#version;
    if (!ours) return;
    for (const prefix of prefixes) {
      if (prefix === this.prefix) continue;
      const s = this.#peers.get(prefix);
      if (s?.version && compareBytes(s.version, ours) >= 0) continue;
      if (this.sendTo(prefix, 0, ours)) this.#peers.get(prefix)!.version = ours;
    }
  }

  /** Forgets the peers whose certificate serial is revoked (§7.7); returns their prefixes. */
  dropRevoked(isRevoked: (serial: bigint) => boolean): Bits[] {
    return this.#peers.dropWhere((s) => s.cert !== null && isRevoked(s.cert.serial));
  }

  /** Forgets the peers whose certificate expired (§6.4); returns their prefixes. */
  expire(): Bits[] {
    return this.#peers.expire(this.#o.clock.now());
  }

  /** A snapshot of the peer table, in prefix order. */
  peers(): PeerInfo[] {
    const now = this.#o.clock.now();
    return this.#peers.entries().map((s) => ({
      prefix: s.prefix,
      connected: isConnected(s, now),
      protocol: s.protocol,
      certNotAfter: s.cert?.notAfter ?? null,
      version: s.version,
    }));
  }

  // --- Receiving ---

  async #receive(host: string, port: number, bytes: Uint8Array): Promise<void> {
    if (host === RELAY_HOST) return this.#relay(host, port, bytes);
    let bits: Bits | null;
    try {
      bits = bitsInNetwork(this.#o.network, host);
    } catch {
      bits = null;
    }
    if (bits === null || bytes.length <= 4) return;
    const now = this.#o.clock.now();
    this.#peers.expire(now);
    const candidate = this.#peers.candidate(bits);
    const seq = readSeq(bytes);
    if (seq <= HANDSHAKE_MAX_SEQ) {
      if (seq === 2) this.#hello2(host, bits, bytes, candidate);
      else await this.#hello01(host, bits, bytes, candidate);
      return;
    }
    if (candidate) this.#data(candidate, bytes);
  }

  /** Seq 0/1: certificate checks (§6.6), then answer with seq 2 or our hello0 (§6.3). */
  async #hello01(
    host: string,
    bits: Bits,
    bytes: Uint8Array,
    candidate: Session | undefined,
  ): Promise<void> {
    const { log } = this.#o;
    let msg = decodeHandshake(bytes) as Hello0 | Hello1 | null;
    let res = msg && await checkPeerCert(msg.cert, bits, this.#checkCert, this.#o.isRevoked);
    if ((!res || (!res.ok && res.invalid)) && readSeq(bytes) === 1 && this.#acceptsProtocol0()) {
      // A protocol-0 peer sent seq 1 without protocol field (§6.8): read it again that way.
      const legacy = decodeHandshake(bytes, true) as Hello1 | null;
      if (legacy) {
        const again = await checkPeerCert(legacy.cert, bits, this.#checkCert, this.#o.isRevoked);
        if (again.ok) [msg, res] = [legacy, again];
      }
    }
    if (!msg || !res) return;
    if (!res.ok) {
      log.debug(`hello${msg.seq} from ${host} ignored: ${res.reason}`);
      return;
    }
    const cert = res.cert;
    if (cert.prefix === this.prefix) return;
    const peer = candidate?.prefix === cert.prefix
      ? candidate
      : this.#peers.getOrCreate(cert.prefix);
    this.#peers.setCert(peer, cert);
    if (msg.seq === 1 && bytesEqual(msg.fingerprint, this.#fingerprint)) {
      this.#sendHello2(peer, msg.protocol);
    } else {
      this.#sendHello0(peer);
    }
  }

  /** Seq 2: verify, decrypt and accept a newer session secret, then send our version (§6.3). */
  #hello2(host: string, bits: Bits, bytes: Uint8Array, peer: Session | undefined): void {
    const { log } = this.#o;
    if (!peer?.cert || !bits.startsWith(peer.prefix)) {
      log.debug(`hello from ${host} ignored: its certificate is unknown; waiting for its hello0`);
      return;
    }
    const msg = decodeHandshake(bytes);
    if (!msg || msg.seq !== 2) return;
    const opened = openHello2(msg, peer.cert, this.#o.key);
    if ("reason" in opened) {
      log.debug(`hello from ${peer.prefix} ignored: ${opened.reason}`);
      return;
    }
    const secret = opened.secret;
    if (!acceptPeerSecret(peer, secret, msg.protocol ?? 0)) {
      log.debug(`hello from ${peer.prefix} ignored: its secret is not newer than ours`);
      return;
    }
    log.debug(`session with ${peer.prefix} started by the peer; sending our version`);
    this.#sendData(peer, this.#version ? concatBytes(Uint8Array.of(0), this.#version) : EMPTY);
    if (this.#version) peer.version = this.#version;
  }

  /** Data: authenticate, then handle and reply to every non-empty message (§6.4). */
  #data(peer: Session, bytes: Uint8Array): void {
    const frame = decodeData(bytes);
    if (!frame) return;
    if (!bytesEqual(hmacSha1(peer.secret, frame.signed), frame.mac)) {
      this.#o.log.trace(`data from ${peer.prefix} dropped: bad MAC`);
      return;
    }
    if (!isFresh(peer, frame.seq)) {
      this.#o.log.trace(`data from ${peer.prefix} dropped: replayed or reordered`);
      return;
    }
    noteReceived(peer, frame.seq);
    const payload = frame.payload;
    if (payload.length === 0) return;
    const first = payload[0];
    const code = first & ~FORWARD_FLAG;
    const body = payload.subarray(1);
    let answer: Uint8Array | null = null;
    if (first & FORWARD_FLAG && body.length > 0) {
      // A forwarded answer travelling back to the local registry (§6.7).
      if (this.#forward) {
        const { host, port } = this.#forward;
        this.#emit(host, port, encodeRelay(peer.prefix, code, body));
      }
    } else {
      answer = handleMessage(this.#ctx, peer, code, body);
    }
    this.#sendData(peer, answer ? concatBytes(Uint8Array.of(first), answer) : EMPTY);
  }

  /** A request of the local registry over ::1 (§6.7). */
  #relay(host: string, port: number, bytes: Uint8Array): void {
    const req = decodeRelay(bytes);
    if (!req) {
      this.#o.log.debug(`malformed relay request from [${host}]:${port} ignored`);
      return;
    }
    this.#forward = { host, port };
    if (req.prefix === this.prefix) {
      const answer = handleMessage(this.#ctx, null, req.code & ~FORWARD_FLAG, req.payload);
      if (answer) this.#emit(host, port, encodeRelay(req.prefix, req.code, answer));
    } else {
      this.#sendTo(req.prefix, concatBytes(Uint8Array.of(req.code | FORWARD_FLAG), req.payload));
    }
  }

  // --- Sending ---

  #sendTo(prefix: Bits, payload: Uint8Array | null): boolean {
    if (prefix === this.prefix) throw new Error(`Cannot send a peer message to ourselves`);
    const now = this.#o.clock.now();
    this.#peers.expire(now);
    const peer = this.#peers.getOrCreate(prefix);
    if (!isConnected(peer, now)) {
      this.#sendHello0(peer);
      return false;
    }
    if (payload) this.#sendData(peer, payload);
    return true;
  }

  #sendData(peer: Session, payload: Uint8Array): void {
    const seq = nextTxSeq(peer);
    noteSent(peer, payload.length, this.#o.clock.now());
    this.#emitTo(peer, encodeData(seq, payload, (signed) => hmacSha1(peer.secret, signed)));
  }

  /** Seq 0 or 1, at most once per HELLO0_INTERVAL_S per peer (§6.3). */
  #sendHello0(peer: Session): void {
    if (!takeHello0(peer, this.#o.clock.now())) return;
    const own = this.#o.cert;
    this.#emitTo(
      peer,
      peer.cert ? encodeHello1(this.#protocol, peer.cert.fingerprint, own) : encodeHello0(own),
      // Refused by the kernel (no route yet): not actually sent, so not rate-limited (§6.3).
      () => peer.hello0Next = 0,
    );
  }

  /** Seq 2 with a fresh secret; the session waits for the peer's answer (§6.3). */
  #sendHello2(peer: Session, peerProtocol: number): void {
    if (!peer.cert) return;
    const secret = newSecret(this.#o.clock.now(), peer.secret);
    startOwnSecret(peer, secret, peerProtocol);
    this.#o.log.debug(`starting a session with ${peer.prefix}`);
    const p = peerProtocol > 0 ? this.#protocol : null;
    this.#emitTo(peer, sealHello2(secret, peer.cert, this.#o.key, p));
  }

  #emitTo(peer: Session, bytes: Uint8Array, onFail?: () => void): void {
    const { host, port } = this.#o.peerEndpoint?.(peer.prefix) ?? {
      host: nodeIp(this.#o.network, peer.prefix),
      port: this.#o.port ?? PEER_PORT,
    };
    this.#emit(host, port, bytes, onFail);
  }

  #emit(host: string, port: number, bytes: Uint8Array, onFail?: () => void): void {
    const fail = (e: unknown) => {
      this.#o.log.debug(`cannot send to [${host}]:${port}: ${describeError(e)}`);
      onFail?.();
    };
    try {
      const r = this.#o.send(host, port, bytes);
      if (r) r.catch(fail);
    } catch (e) {
      fail(e);
    }
  }

  // --- Helpers ---

  #acceptsProtocol0(): boolean {
    return (this.#o.minProtocol?.() ?? 1) < PROTOCOL0_IGNORED_FROM;
  }

  #timeSecret(): Uint8Array {
    return timeSecret(BigInt(Math.floor(this.#o.clock.now() * 1000)));
  }
}
