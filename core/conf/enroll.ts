// `re6st conf`: enroll this machine in a re6st network (PROTOCOL.md §3.4, §9.4).

import { join } from "node:path";
import { bitsInNetwork, ipFromBits, nodeSubnet, prefixFromCn } from "../addressing.ts";
import {
  type Certificate,
  createCsr,
  fingerprint,
  type FingerprintSpec,
  matchesFingerprint,
  networkOfCa,
  parseCertificate,
  parseFingerprint,
  type SubjectEntry,
} from "../cert.ts";
import {
  bytesEqual,
  generateRsaKey,
  loadPrivateKey,
  modulusBits,
  type PrivateKey,
  spkiDer,
  toHex,
} from "../crypto.ts";
import { describeError, UsageError } from "../errors.ts";
import type { ConfOptions } from "../options/conf.ts";
import { type FetchFn, RegistryClient, RegistryForbiddenError } from "../registry/client.ts";
import { attrType, entryOid, OID_CN, OID_SERIAL_NUMBER } from "../x509_name.ts";
import type { ConfFiles } from "./files.ts";
import { enrollmentReport, sampleConfig } from "./sample.ts";

export type { ConfOptions } from "../options/conf.ts";

/** How `re6st conf` talks to the person running it (the shape of cmd/io.ts Io). */
export interface ConfIo {
  out(text: string): void;
  err(text: string): void;
  /** Asks a question; null when there is no terminal or input ended. */
  prompt(question: string): Promise<string | null>;
}

/** Runs a program (the shape of platform/runner.ts Runner.run). */
export interface CommandRunner {
  run(
    argv: readonly string[],
    opts?: { ok?: readonly number[] | "any" },
  ): Promise<{ code: number; stdout: string }>;
}

/** What `re6st conf` uses from the outside world. */
export interface ConfDeps {
  files: ConfFiles;
  /** Runs `ip -6 -o route get` for --is-needed. */
  runner?: CommandRunner;
  /** HTTP implementation for the registry client (default: global fetch). */
  fetch?: FetchFn;
  /** Registry request deadline (default 60 s). */
  timeoutMs?: number;
  /** RSA key generator, PKCS#8 PEM (default: generateRsaKey). */
  generateKey?: (bits: number) => Promise<string>;
}

const FILES = { ca: "ca.crt", cert: "cert.crt", key: "cert.key", conf: "re6stnet.conf" };

/** Enrolls this machine as `re6st conf` does (§9.4); returns the exit code. */
export async function runConf(opts: ConfOptions, io: ConfIo, deps: ConfDeps): Promise<number> {
  // Everything that can be refused without the network is refused first.
  const fp = opts.fingerprint === undefined ? null : fingerprintOption(opts.fingerprint);
  const extra = reqOption(opts.req);
  if (opts.anonymous && (opts.email !== undefined || opts.token !== undefined)) {
    throw new UsageError("option --anonymous cannot be combined with --email or --token");
  }
  if (opts.isNeeded && !deps.runner) throw new Error("--is-needed needs a command runner");
  const { files } = deps;
  const path = (name: string) => join(opts.dir, name);
  const client = new RegistryClient(opts.registry, {
    fetch: deps.fetch,
    timeoutMs: deps.timeoutMs,
  });

  // 1. The CA, checked against --fingerprint.
  const caPem = await client.getCa();
  const ca = parseCertificate(caPem, `CA certificate from ${opts.registry}`);
  checkCa(ca, fp, io);
  const network = networkOfCa(ca);
  if (opts.isNeeded) return await isNeeded(network, deps.runner!, io);

  await files.ensureDir(opts.dir);
  await writeFile(files, path(FILES.ca), caPem, 0o644);
  if (opts.caOnly) return 0;

  // 2. Key (reused when present) and certificate request.
  const caBits = modulusBits(ca.publicKey);
  const key = await nodeKey(files, path(FILES.key), caBits, deps.generateKey ?? generateRsaKey);
  const previous = await previousCertificate(files, path(FILES.cert), io);
  const csr = createCsr(key, mergeSubject(previous?.subject ?? [], extra));

  // 3. Token, then the certificate, written only once complete.
  const token = await obtainToken(opts, client, io);
  const staged = await files.stage(path(FILES.cert), 0o644);
  let cert: Certificate;
  try {
    const pem = await requestCertificate(client, token, csr, opts);
    cert = parseCertificate(pem, `certificate from ${opts.registry}`);
    if (!bytesEqual(cert.spki, spkiDer(key))) {
      throw new Error(`Registry ${opts.registry} returned a certificate for another key`);
    }
    if (!cert.cn) throw new Error(`Registry ${opts.registry} returned a certificate without CN`);
    await staged.commit(pem);
  } catch (e) {
    await staged.discard();
    throw e;
  }

  // 4. Sample configuration, then the summary.
  if (await files.read(path(FILES.conf)) === null) {
    // `country *` (unknown) would not be a valid --country for the node.
    const cc = opts.location?.split(",")[0];
    const country = cc && /^[A-Za-z]{2}$/.test(cc) ? cc.toUpperCase() : undefined;
    await writeFile(files, path(FILES.conf), sampleConfig(opts.registry, country), 0o644);
    io.out(`Wrote a sample configuration to ${path(FILES.conf)}`);
  }
  const subnet = nodeSubnet(network, prefixFromCn(cert.cn));
  for (const line of enrollmentReport(subnet, cert.cn, cert.notBefore, cert.notAfter)) {
    io.out(line);
  }
  return 0;
}

function fingerprintOption(text: string): FingerprintSpec {
  try {
    return parseFingerprint(text);
  } catch (cause) {
    const why = describeError(cause);
    throw new UsageError(`option --fingerprint: ${why}`, { cause });
  }
}

/** Checks -r attributes: known types, CN and serialNumber reserved. */
function reqOption(req: [string, string][]): [string, string][] {
  for (const [type] of req) {
    if (type === "serial") throw new UsageError(`option --req: attribute ${type} is reserved`);
    let oid: string;
    try {
      oid = attrType(type).oid;
    } catch (cause) {
      throw new UsageError(`option --req: unknown attribute ${JSON.stringify(type)}`, { cause });
    }
    if (oid === OID_CN || oid === OID_SERIAL_NUMBER) {
      throw new UsageError(`option --req: attribute ${type} is reserved`);
    }
  }
  return req;
}

function checkCa(ca: Certificate, fp: FingerprintSpec | null, io: ConfIo): void {
  if (fp === null) {
    io.err(
      `WARNING: the CA certificate was not checked (no --fingerprint); its fingerprint is ` +
        `sha256:${toHex(fingerprint(ca.der, "sha256"))}`,
    );
  } else if (!matchesFingerprint(ca.der, fp)) {
    throw new Error(
      `CA certificate does not match --fingerprint ${fp.alg}:${toHex(fp.digest)} ` +
        `(got ${fp.alg}:${toHex(fingerprint(ca.der, fp.alg))}); nothing written`,
    );
  }
}

/** --is-needed: 1 when this host already reaches the network from a re6st address, else 0. */
async function isNeeded(network: string, runner: CommandRunner, io: ConfIo): Promise<number> {
  const address = ipFromBits(network);
  const res = await runner.run(["ip", "-6", "-o", "route", "get", address], { ok: "any" });
  if (res.code !== 0) return 0; // no route at all: re6st is needed
  // The reference takes the 9th word; the word after "src" is the same one, also with "via".
  const words = res.stdout.trim().split(/\s+/);
  const i = words.indexOf("src");
  const source = i >= 0 ? words[i + 1] : words[8];
  if (source && bitsInNetwork(network, source) !== null) {
    io.err(`re6st is not needed: ${address} is reached from ${source}, inside the network`);
    return 1;
  }
  return 0;
}

async function writeFile(files: ConfFiles, path: string, data: string, mode: number) {
  const staged = await files.stage(path, mode);
  try {
    await staged.commit(data);
  } catch (e) {
    await staged.discard();
    throw e;
  }
}

/** The node key: the existing cert.key, or a new one sized like the CA key (mode 0600). */
async function nodeKey(
  files: ConfFiles,
  path: string,
  bits: number,
  generate: (bits: number) => Promise<string>,
): Promise<PrivateKey> {
  const existing = await files.read(path);
  if (existing !== null) {
    const key = loadPrivateKey(existing, `"${path}"`);
    const have = modulusBits(key);
    if (have !== bits) {
      throw new Error(
        `Key "${path}" has ${have} bits but the CA key has ${bits}; every key of a network ` +
          `must have the CA's size: move it away to make a new one`,
      );
    }
    return key;
  }
  const pem = await generate(bits);
  await writeFile(files, path, pem, 0o600);
  return loadPrivateKey(pem, `"${path}"`);
}

async function previousCertificate(
  files: ConfFiles,
  path: string,
  io: ConfIo,
): Promise<Certificate | null> {
  const data = await files.read(path);
  if (data === null) return null;
  try {
    return parseCertificate(
      data.length && data[0] === 0x30 ? data : new TextDecoder().decode(data),
    );
  } catch (e) {
    io.err(`WARNING: ignoring the subject of "${path}": ${describeError(e)}`);
    return null;
  }
}

/**
 * Subject of the request (§3.4): the previous subject without CN and serialNumber, then each
 * -r attribute replacing any earlier one of its type (an empty value only removes it).
 */
export function mergeSubject(
  previous: readonly SubjectEntry[],
  extra: readonly (readonly [string, string])[],
): SubjectEntry[] {
  let out = previous.filter((e) => {
    const oid = entryOid(e);
    return oid !== OID_CN && oid !== OID_SERIAL_NUMBER;
  });
  for (const [type, value] of extra) {
    const oid = attrType(type).oid;
    out = out.filter((e) => entryOid(e) !== oid);
    if (value !== "") out.push([type, value]);
  }
  return out;
}

/** The token: "" when anonymous, --token, or one mailed by the registry and typed in. */
async function obtainToken(opts: ConfOptions, client: RegistryClient, io: ConfIo) {
  if (opts.anonymous) return "";
  if (opts.token !== undefined) {
    if (opts.token === "") throw new UsageError("option --token: empty token (see --anonymous)");
    return opts.token;
  }
  const email = opts.email ?? (await io.prompt("Your e-mail address:"))?.trim();
  if (!email) {
    throw new Error(
      "No e-mail address: run again with --email ADDR (or --token TOKEN, or --anonymous)",
    );
  }
  try {
    await client.requestToken(email);
  } catch (e) {
    if (e instanceof RegistryForbiddenError) {
      throw new Error(
        `Registry ${opts.registry} does not send tokens by e-mail; ask its administrator for ` +
          `a token (--token) or try --anonymous`,
        { cause: e },
      );
    }
    throw e;
  }
  io.out(`A token was sent to ${email}.`);
  const token = (await io.prompt("Token from the e-mail:"))?.trim();
  if (!token) {
    throw new Error(
      `No token entered: when the mail sent to ${email} arrives, run again with ` +
        `--token TOKEN (the same options, without --email)`,
    );
  }
  return token;
}

async function requestCertificate(
  client: RegistryClient,
  token: string,
  csr: string,
  opts: ConfOptions,
): Promise<string> {
  let pem: string | null;
  try {
    pem = await client.requestCertificate(token, csr, opts.location ?? "");
  } catch (e) {
    if (e instanceof RegistryForbiddenError) {
      throw new Error(
        token === ""
          ? `Registry ${opts.registry} does not accept anonymous registrations`
          : `Registry ${opts.registry} does not accept registrations by token`,
        { cause: e },
      );
    }
    throw e;
  }
  if (pem === null) throw new Error("Invalid or expired token; nothing written");
  return pem;
}
