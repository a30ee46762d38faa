// Test bench for the peer protocol: a test CA, node identities, a fake clock and an in-memory
// network carrying datagrams between PeerProtocol instances.

import { nodeIp } from "../../core/addressing.ts";
import { type ManualClock, manualClock } from "../../core/clock.ts";
import type { Bits } from "../../core/addressing.ts";
import { createCa, issueCertificate, parseCertificate } from "../../core/cert.ts";
import type { Certificate } from "../../core/cert.ts";
import { generateRsaKey, loadPrivateKey } from "../../core/crypto.ts";
import type { PrivateKey } from "../../core/crypto.ts";
import { memoryLogger } from "../../core/log.ts";
import type { Logger } from "../../core/log.ts";
import { signVersion, verifyVersion } from "../../core/netconfig/version.ts";
import { PeerProtocol } from "../../core/peer/protocol.ts";
import type { PeerProtocolOptions } from "../../core/peer/protocol.ts";
import { TEST_CA_CERT_PEM, TEST_CA_KEY_PEM } from "./vectors.ts";

/** Network of the VECTORS.md §8 test CA: 2001:db8:42::/48. */
export const VECTOR_NETWORK = "001000000000000100001101101110000000000001000010";

/** A node identity: prefix, key and certificate issued by the test CA. */
export interface Identity {
  prefix: Bits;
  key: PrivateKey;
  cert: Certificate;
  serial: bigint;
}

/** A test CA able to issue node certificates and sign version blobs. */
export interface TestCa {
  network: Bits;
  cert: Certificate;
  key: PrivateKey;
  issue(prefix: Bits, opts?: { serial?: bigint; days?: number; notBefore?: Date }): Identity;
  /** Signed version blob for version `v` (§4.8). */
  version(v: number): Uint8Array;
  /** Checks a version blob's signature (§4.8). */
  verifyVersion(blob: Uint8Array): boolean;
}

const nodeKeys: Promise<PrivateKey>[] = [];

/** A 1024-bit node key, generated once per index and reused across tests. TEST ONLY. */
function nodeKey(i: number): Promise<PrivateKey> {
  nodeKeys[i] ??= generateRsaKey(1024).then((pem) => loadPrivateKey(pem));
  return nodeKeys[i];
}

/**
 * A test CA for `network` with the VECTORS.md §8 key (1024-bit, TEST ONLY); for the vector
 * network it is the VECTORS.md §8 certificate itself, so vector node certificates validate.
 */
export async function testCa(network: Bits = VECTOR_NETWORK, nodeCount = 4): Promise<TestCa> {
  const certPem = network === VECTOR_NETWORK ? TEST_CA_CERT_PEM : (await createCa({
    network,
    keyPem: TEST_CA_KEY_PEM,
    notBefore: new Date(Date.now() - 86400_000),
  })).certPem;
  const cert = parseCertificate(certPem);
  const key = loadPrivateKey(TEST_CA_KEY_PEM);
  const keys = await Promise.all(Array.from({ length: nodeCount }, (_, i) => nodeKey(i)));
  let serial = 1n;
  let used = 0;
  return {
    network,
    cert,
    key,
    issue(prefix, opts = {}) {
      const k = keys[used++ % keys.length];
      const s = opts.serial ?? serial++;
      const notBefore = opts.notBefore ?? new Date(Date.now() - 3600_000);
      const issued = issueCertificate({
        ca: cert,
        caKey: key,
        subject: [["serialNumber", String(s)], ["CN", cnOf(prefix)]],
        publicKey: k,
        serial: s,
        notBefore,
        notAfter: new Date(notBefore.getTime() + (opts.days ?? 365) * 86400_000),
      });
      return { prefix, key: k, cert: parseCertificate(issued.der), serial: s };
    },
    version: (v) => signVersion(key, v),
    verifyVersion: (blob) => verifyVersion(cert.publicKey, blob) !== null,
  };
}

function cnOf(prefix: Bits): string {
  return `${prefix === "" ? 0n : BigInt("0b" + prefix)}/${prefix.length}`;
}

/** One datagram in flight or delivered. */
export interface Datagram {
  fromHost: string;
  fromPort: number;
  toHost: string;
  toPort: number;
  bytes: Uint8Array;
}

/** Receives datagrams addressed to one host. */
type Receiver = (host: string, port: number, bytes: Uint8Array) => Promise<void>;

/** An in-memory datagram network: sends are queued, `flush` delivers them in order. */
export class MemoryNet {
  queue: Datagram[] = [];
  delivered: Datagram[] = [];
  /** Return false to drop a datagram (it is still recorded in `dropped`). */
  filter: (d: Datagram) => boolean = () => true;
  dropped: Datagram[] = [];
  #hosts = new Map<string, Receiver>();

  attach(host: string, receive: Receiver): void {
    this.#hosts.set(host, receive);
  }

  /** A send function for a PeerProtocol living at `host`:`port`. */
  sender(host: string, port = 326) {
    return (toHost: string, toPort: number, bytes: Uint8Array): void => {
      this.queue.push({ fromHost: host, fromPort: port, toHost, toPort, bytes: bytes.slice() });
    };
  }

  /** Injects a datagram as if `fromHost` had sent it. */
  inject(d: Datagram): void {
    this.queue.push(d);
  }

  /** Delivers the first queued datagram; returns false when the queue was empty. */
  async step(): Promise<boolean> {
    const d = this.queue.shift();
    if (!d) return false;
    await this.#deliver(d);
    return true;
  }

  async #deliver(d: Datagram): Promise<void> {
    if (!this.filter(d)) {
      this.dropped.push(d);
      return;
    }
    this.delivered.push(d);
    const to = this.#hosts.get(d.toHost);
    if (to) await to(d.fromHost, d.fromPort, d.bytes);
  }

  /** Delivers queued datagrams (and those they cause) until none is left; returns how many. */
  async flush(limit = 1000): Promise<number> {
    let n = 0;
    while (this.queue.length) {
      if (++n > limit) throw new Error(`MemoryNet: more than ${limit} datagrams, a loop?`);
      await this.#deliver(this.queue.shift()!);
    }
    return n;
  }
}

/** A PeerProtocol under test with its identity, log and recorded callbacks. */
export interface TestNode {
  id: Identity;
  ip: string;
  proto: PeerProtocol;
  log: Logger & { lines: string[] };
  events: string[];
  /** The address list it advertises. */
  addresses: string;
}

/** Options of makeNode beyond the defaults. */
export type NodeOverrides = Partial<PeerProtocolOptions>;

/** Builds a PeerProtocol for `id` attached to `net`. */
export function makeNode(
  ca: TestCa,
  id: Identity,
  net: MemoryNet,
  clock: ManualClock,
  overrides: NodeOverrides = {},
  revoked: Set<bigint> = new Set(),
): TestNode {
  const ip = nodeIp(ca.network, id.prefix);
  const log = memoryLogger(4);
  const events: string[] = [];
  const node: TestNode = { id, ip, proto: null!, log, events, addresses: "" };
  node.proto = new PeerProtocol({
    network: ca.network,
    prefix: id.prefix,
    cert: id.cert.der,
    key: id.key,
    ca: ca.cert,
    isRevoked: (s) => revoked.has(s),
    send: net.sender(ip),
    clock,
    log,
    handlers: {
      addressList: () => node.addresses,
      onAddress: (p, list) => events.push(`address ${p} ${list}`),
      onNewerVersion: (blob, from) => events.push(`newer ${blob[0]} ${from}`),
      onRegistryVersion: () => events.push("registry version"),
      onTunnelKillRequest: (p) => events.push(`kill request ${p}`),
      onTunnelKillResponse: (p) => events.push(`kill response ${p}`),
      nodeInfo: () => "0.1.0, test",
      topology: () => "1 0000000000000010",
    },
    ...overrides,
  });
  net.attach(ip, (h, p, b) => node.proto.receive(h, p, b));
  return node;
}

/** A CA, a clock, a network and one node per prefix, ready to talk. */
export interface Lab {
  ca: TestCa;
  clock: ManualClock;
  net: MemoryNet;
  nodes: TestNode[];
  revoked: Set<bigint>;
}

/** Builds a lab with nodes for `prefixes` (16-bit prefixes in the vector network by default). */
export async function makeLab(
  prefixes: Bits[],
  overrides: (i: number) => NodeOverrides = () => ({}),
): Promise<Lab> {
  const ca = await testCa(VECTOR_NETWORK, prefixes.length);
  const clock = manualClock(Math.floor(Date.now() / 1000) * 1000);
  const net = new MemoryNet();
  const revoked = new Set<bigint>();
  const nodes = prefixes.map((p, i) =>
    makeNode(ca, ca.issue(p), net, clock, overrides(i), revoked)
  );
  return { ca, clock, net, nodes, revoked };
}

/** Sequence number of a datagram. */
export function seqOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
}
