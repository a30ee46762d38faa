// The node's identity (PROTOCOL.md §7.1 step 1, §3.6, §1.4): CA, certificate and key loaded,
// checked against each other, and the addresses derived from them.

import {
  type Bits,
  networkCidr,
  networkFromSerial,
  nodeIp,
  nodeSubnet,
  prefixFromCn,
} from "../addressing.ts";
import { type Certificate, parseCertificate, validateCert } from "../cert.ts";
import { bytesEqual, loadPrivateKey, modulusBits, type PrivateKey, spkiDer } from "../crypto.ts";

/** Paths of the three identity files (`--ca`, `--cert`, `--key`). */
export interface IdentityFiles {
  ca: string;
  cert: string;
  key: string;
}

/** Reads a whole file; throws the platform's error (NotFound, PermissionDenied, …). */
export type ReadFile = (path: string) => Uint8Array;

/** Everything the node knows about itself once its files are loaded. */
export interface Identity {
  files: IdentityFiles;
  ca: Certificate;
  cert: Certificate;
  key: PrivateKey;
  /** Network bit-string from the CA serial (§1.1). */
  network: Bits;
  /** Node prefix bit-string from the certificate CN (§1.2). */
  prefix: Bits;
  /** CN form of the prefix, e.g. `6/16`. */
  cn: string;
  /** Node IP (`re6stnet_ip`), e.g. `2001:db8:42:6::1`. */
  ip: string;
  /** Node subnet CIDR (`re6stnet_subnet`), e.g. `2001:db8:42:6::/64`. */
  subnet: string;
  /** Length of the subnet (network + prefix bits). */
  subnetLength: number;
  /** Network CIDR (`re6stnet_network`), e.g. `2001:db8:42::/48`. */
  networkCidr: string;
  /** Subject serialNumber of the certificate (IPv4 payload, §1.6), when present. */
  subjectSerial?: number;
  /** True when the certificate has expired (accepted: it is renewed at start-up, §3.6). */
  expired: boolean;
}

/** An identity file that stops start-up; the message names the file and the reason. */
export class IdentityError extends Error {
  override name = "IdentityError";
  constructor(
    readonly what: string,
    readonly path: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot load ${what} "${path}": ${reason}`, options);
  }
  /** The reason already says, in words, what the cause was (see describeError). */
  readonly causeInMessage = true;
}

/** A short reason for a failed file read: "no such file", "permission denied", … */
export function readFailure(e: unknown): string {
  const err = e as { name?: string; code?: string; message?: string };
  if (err?.name === "NotFound" || err?.code === "ENOENT") return "no such file";
  if (err?.name === "PermissionDenied" || err?.code === "EACCES") return "permission denied";
  if (err?.name === "IsADirectory" || err?.code === "EISDIR") return "is a directory";
  return `cannot read: ${err?.message ?? String(e)}`;
}

function readOrFail(read: ReadFile, what: string, path: string): Uint8Array {
  try {
    return read(path);
  } catch (cause) {
    throw new IdentityError(what, path, readFailure(cause), { cause });
  }
}

function reasonOf(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // parseCertificate says "Cannot parse <source>: why"; keep only why.
  return m.replace(/^Cannot (parse|load) [^:]*: /, "");
}

function certOrFail(bytes: Uint8Array, what: string, path: string): Certificate {
  try {
    return parseCertificate(new TextDecoder().decode(bytes), what);
  } catch (cause) {
    throw new IdentityError(what, path, `not a PEM certificate (${reasonOf(cause)})`, { cause });
  }
}

/**
 * Loads and checks the CA, certificate and key (§7.1 step 1): the certificate must be signed
 * by the CA (non-strict validity: an expired certificate is accepted so it can be renewed),
 * carry a node CN, and match the key, whose size must be the CA key's.
 */
export function loadIdentity(files: IdentityFiles, read: ReadFile, now: Date): Identity {
  const ca = certOrFail(readOrFail(read, "CA certificate", files.ca), "CA certificate", files.ca);
  let network: Bits;
  try {
    network = networkFromSerial(ca.serial);
    if (network.length === 0 || network.length >= 128) throw new Error("empty network");
  } catch (cause) {
    throw new IdentityError(
      "CA certificate",
      files.ca,
      `its serial number 0x${ca.serial.toString(16)} encodes no re6st network`,
      { cause },
    );
  }
  const certBytes = readOrFail(read, "certificate", files.cert);
  const cert = certOrFail(certBytes, "certificate", files.cert);
  const invalid = validateCert(cert, ca, { strict: false, now });
  if (invalid) {
    const reason = /issuer|signature/.test(invalid)
      ? `not issued by the CA "${files.ca}" (${invalid})`
      : invalid;
    throw new IdentityError("certificate", files.cert, reason);
  }
  let prefix: Bits;
  try {
    if (cert.cn === undefined) throw new Error("no common name");
    prefix = prefixFromCn(cert.cn);
  } catch (cause) {
    throw new IdentityError(
      "certificate",
      files.cert,
      `its common name ${JSON.stringify(cert.cn ?? "")} is not a re6st node prefix`,
      { cause },
    );
  }
  if (prefix.length === 0 || network.length + prefix.length > 128) {
    throw new IdentityError(
      "certificate",
      files.cert,
      `prefix ${cert.cn} does not fit in the ${network.length}-bit network`,
    );
  }
  const keyBytes = readOrFail(read, "private key", files.key);
  let key: PrivateKey;
  try {
    key = loadPrivateKey(keyBytes, "private key");
  } catch (cause) {
    throw new IdentityError("private key", files.key, `not a PEM RSA private key`, { cause });
  }
  if (!bytesEqual(spkiDer(key), cert.spki)) {
    throw new IdentityError(
      "private key",
      files.key,
      `does not match the certificate "${files.cert}"`,
    );
  }
  const keyBits = modulusBits(key);
  const caBits = modulusBits(ca.publicKey);
  if (keyBits !== caBits) {
    throw new IdentityError(
      "private key",
      files.key,
      `${keyBits}-bit key, but the CA key has ${caBits} bits (every key of a network must)`,
    );
  }
  return {
    files: { ...files },
    ca,
    cert,
    key,
    network,
    prefix,
    cn: cert.cn!,
    ip: nodeIp(network, prefix),
    subnet: nodeSubnet(network, prefix),
    subnetLength: network.length + prefix.length,
    networkCidr: networkCidr(network),
    subjectSerial: cert.subjectSerial,
    expired: now.getTime() > cert.notAfter.getTime(),
  };
}
