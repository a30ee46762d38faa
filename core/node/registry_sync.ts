// What the node gets from its registry at start-up (PROTOCOL.md §7.1 steps 3 and 9, §3.8, §7.8):
// the signed network configuration (retried with back-off while the registry is
// unreachable), DH parameters when --dh is absent, certificate and CA renewal.

import { describeError } from "../errors.ts";
import { type Certificate, parseCertificate, validateCert } from "../cert.ts";
import {
  FETCH_BACKOFF_MAX_S,
  FETCH_BACKOFF_START_S,
  PROTOCOL_VERSION,
  RENEW_PERIOD_S,
  RENEW_RETRY_S,
} from "../constants.ts";
import { bytesEqual, spkiDer } from "../crypto.ts";
import type { Logger } from "../log.ts";
import { decodeNetworkConfig, type NetworkParams } from "../netconfig/document.ts";
import { verifyVersion } from "../netconfig/version.ts";
import type { BootstrapPeer } from "../registry/client.ts";
import type { NodeCache } from "./cache.ts";
import { backoffDelays, type Clock } from "../clock.ts";
import type { Identity } from "./identity.ts";

/** The registry calls a node makes, on one HMAC session (core/registry/client.ts fits). */
export interface NodeRegistry {
  readonly url: string;
  getNetworkConfig(): Promise<Uint8Array>;
  getDh(): Promise<string>;
  renewCertificate(): Promise<string | null>;
  getCa(): Promise<string>;
  /** A live peer to connect to (§7.3), or null when the registry knows none. */
  getBootstrapPeer(): Promise<BootstrapPeer | null>;
  /** The country of an address (GeoIP), or null. */
  getCountry(address: string): Promise<string | null>;
}

/** Stop was requested while waiting. */
export class StopRequested extends Error {
  override name = "StopRequested";
  constructor() {
    super("stop requested");
  }
}

/** Throws StopRequested when `signal` is aborted. */
export function checkStop(signal?: AbortSignal): void {
  if (signal?.aborted) throw new StopRequested();
}

/** Resolves with `p`, or rejects with StopRequested as soon as `signal` aborts. */
export function unlessStopped<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  checkStop(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new StopRequested());
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Seams of the registry sync. */
export interface SyncContext {
  registry: NodeRegistry;
  cache: NodeCache;
  clock: Clock;
  log: Logger;
  signal?: AbortSignal;
  /** Called after each successful or failed registry exchange (status: registry reachable). */
  onContact?: (ok: boolean, error?: string) => void;
}

/** Whether the stored version blob is present and signed by the CA. */
export function storedVersionValid(cache: NodeCache, ca: Certificate): boolean {
  const v = cache.version();
  return v !== null && verifyVersion(ca.publicKey, v) !== null;
}

/**
 * Fetches, decodes and verifies the network configuration once, and stores it; returns the
 * changed keys. Throws on any failure; the stored configuration is then left untouched.
 */
export async function fetchNetworkConfig(ctx: SyncContext, identity: Identity): Promise<string[]> {
  let body: Uint8Array;
  try {
    body = await unlessStopped(ctx.registry.getNetworkConfig(), ctx.signal);
    ctx.onContact?.(true);
  } catch (e) {
    if (!(e instanceof StopRequested)) ctx.onContact?.(false, describeError(e));
    throw e;
  }
  const params = await decodeNetworkConfig(body, identity.key);
  const version = params.version;
  if (!(version instanceof Uint8Array) || verifyVersion(identity.ca.publicKey, version) === null) {
    throw new Error("the network configuration version is missing or not signed by the CA");
  }
  return ctx.cache.storeConfig(params);
}

/** Retries `attempt` with a 1 s doubling to 60 s back-off until it succeeds or stop. */
export async function withBackoff<T>(
  ctx: Pick<SyncContext, "clock" | "log" | "signal">,
  what: string,
  attempt: () => Promise<T>,
): Promise<T> {
  const next = backoffDelays(FETCH_BACKOFF_START_S * 1000, FETCH_BACKOFF_MAX_S * 1000);
  for (;;) {
    checkStop(ctx.signal);
    try {
      return await attempt();
    } catch (e) {
      if (e instanceof StopRequested) throw e;
      const delay = next();
      ctx.log.warn(`Cannot ${what}: ${describeError(e)}; will retry in ${delay / 1000} s`);
      await ctx.clock.sleep(delay, ctx.signal);
    }
  }
}

/**
 * Cache initialisation (§7.1 step 3.1): without a valid stored version, fetch until it works;
 * otherwise fetch once if the stored protocol is older than ours or we are the registry node.
 * Returns the parameters in force.
 */
export async function syncNetworkConfig(
  ctx: SyncContext,
  identity: Identity,
): Promise<NetworkParams> {
  if (!storedVersionValid(ctx.cache, identity.ca)) {
    ctx.log.info(`No valid network configuration in the cache: asking ${ctx.registry.url}`);
    await withBackoff(
      ctx,
      `get the network configuration from ${ctx.registry.url}`,
      () => fetchNetworkConfig(ctx, identity),
    );
    ctx.log.info("Network configuration received and verified");
    return ctx.cache.config();
  }
  const stored = ctx.cache.config();
  const protocol = typeof stored.protocol === "number" ? stored.protocol : 0;
  const isRegistryNode = stored.registry_prefix === identity.prefix;
  if (protocol < PROTOCOL_VERSION || isRegistryNode) {
    try {
      const changed = await fetchNetworkConfig(ctx, identity);
      ctx.log.info(
        `Network configuration refreshed from ${ctx.registry.url}` +
          (changed.length ? ` (changed: ${changed.join(", ")})` : " (unchanged)"),
      );
    } catch (e) {
      if (e instanceof StopRequested) throw e;
      ctx.log.warn(
        `Cannot refresh the network configuration: ${describeError(e)}; using the cached one`,
      );
    }
  }
  return ctx.cache.config();
}

/** Files the DH fetch and the renewal read and write. */
export interface SyncFiles {
  exists(path: string): Promise<boolean>;
  /** Text of a file, or null when it does not exist. */
  readText(path: string): Promise<string | null>;
  /** Writes a new file (mode 0644 unless given). */
  writeText(path: string, text: string, mode?: number): Promise<void>;
  /**
   * Replaces `path` safely (§3.8): writes `<path>.new`, copies owner and group of `path`,
   * renames over it.
   */
  replaceText(path: string, text: string): Promise<void>;
  /** Renames `from` to `to` (replacing `to` at once). */
  rename(from: string, to: string): Promise<void>;
}

/** Whether `text` holds PEM-encoded DH parameters (a whole block). */
export function isDhPem(text: string): boolean {
  return /-----BEGIN DH PARAMETERS-----\s+[A-Za-z0-9+/=\s]+-----END DH PARAMETERS-----/.test(
    text,
  );
}

/**
 * Makes sure DH parameters exist at `path` (§7.1 step 9): fetched from the registry with
 * back-off when the file is missing or does not hold DH parameters (a write cut short);
 * written to `<path>.tmp` first, then renamed over `path`.
 */
export async function ensureDh(ctx: SyncContext, files: SyncFiles, path: string): Promise<void> {
  const old = await files.readText(path);
  if (old !== null && isDhPem(old)) return;
  if (old === null) ctx.log.info(`No DH parameters at ${path}: asking ${ctx.registry.url}`);
  else ctx.log.warn(`${path} holds no DH parameters: asking ${ctx.registry.url} again`);
  const pem = await withBackoff(ctx, `get DH parameters from ${ctx.registry.url}`, async () => {
    const text = await unlessStopped(ctx.registry.getDh(), ctx.signal);
    if (!isDhPem(text)) throw new Error("the registry sent no DH parameters");
    return text;
  });
  const tmp = `${path}.tmp`;
  await files.writeText(tmp, pem);
  await files.rename(tmp, path);
  ctx.log.info(`DH parameters saved to ${path}`);
}

/** Result of the renewal check. */
export interface RenewalResult {
  /** Earliest time (ms) at which the certificate or the CA needs the next renewal. */
  nextRenewalMs: number;
  /** True when a file was replaced (the identity must be loaded again). */
  renewed: boolean;
}

/** When a certificate is due (§3.8): now ≥ notAfter − 30 days (or revoked). */
export function renewalDueMs(cert: Certificate): number {
  return cert.notAfter.getTime() - RENEW_PERIOD_S * 1000;
}

/**
 * The renewal procedure of §3.8 for the certificate and the CA: asks the registry for each
 * one that is due, checks and installs the answer, and says when to try next. A failure
 * (registry unreachable, empty or identical answer, unusable certificate) is logged and
 * retried 24 h later.
 */
export async function renewIdentity(
  ctx: SyncContext,
  files: SyncFiles,
  identity: Identity,
  crl: ReadonlySet<bigint>,
): Promise<RenewalResult> {
  const now = ctx.clock.now();
  let renewed = false;
  const retry = now + RENEW_RETRY_S * 1000;
  const next: number[] = [];

  // Own certificate.
  const revoked = crl.has(identity.cert.serial);
  if (now >= renewalDueMs(identity.cert) || revoked) {
    const why = revoked ? "its serial is revoked" : "it expires soon";
    ctx.log.info(`Renewing certificate ${identity.files.cert} (${why})`);
    try {
      const pem = await unlessStopped(ctx.registry.renewCertificate(), ctx.signal);
      ctx.onContact?.(true);
      const fresh = checkRenewedCert(pem, identity, now);
      await files.replaceText(identity.files.cert, fresh.pem);
      ctx.log.info(
        `Certificate ${identity.files.cert} renewed: serial ${fresh.serial}, valid until ` +
          fresh.notAfter.toISOString(),
      );
      renewed = true;
      next.push(renewalDueMs(fresh));
    } catch (e) {
      if (e instanceof StopRequested) throw e;
      ctx.log.error(
        `Cannot renew certificate ${identity.files.cert}: ${describeError(e)}; ` +
          `will retry in ${RENEW_RETRY_S / 3600} h`,
      );
      next.push(retry);
    }
  } else next.push(renewalDueMs(identity.cert));

  // CA.
  if (now >= renewalDueMs(identity.ca)) {
    ctx.log.info(`Renewing CA certificate ${identity.files.ca} (it expires soon)`);
    try {
      const pem = await unlessStopped(ctx.registry.getCa(), ctx.signal);
      ctx.onContact?.(true);
      const fresh = checkRenewedCa(pem, identity);
      await files.replaceText(identity.files.ca, fresh.pem);
      ctx.log.info(
        `CA certificate ${identity.files.ca} renewed, valid until ` +
          fresh.notAfter.toISOString(),
      );
      renewed = true;
      next.push(renewalDueMs(fresh));
    } catch (e) {
      if (e instanceof StopRequested) throw e;
      ctx.log.error(
        `Cannot renew CA certificate ${identity.files.ca}: ${describeError(e)}; ` +
          `will retry in ${RENEW_RETRY_S / 3600} h`,
      );
      next.push(retry);
    }
  } else next.push(renewalDueMs(identity.ca));

  return { nextRenewalMs: Math.max(now, Math.min(...next)), renewed };
}

function checkRenewedCert(pem: string | null, identity: Identity, now: number): Certificate {
  if (!pem) throw new Error("the registry sent nothing");
  const fresh = parseCertificate(pem, "renewed certificate");
  if (bytesEqual(fresh.der, identity.cert.der)) {
    throw new Error("the registry sent the same certificate back");
  }
  const invalid = validateCert(fresh, identity.ca, { now: new Date(now) });
  if (invalid) throw new Error(`the renewed certificate is unusable: ${invalid}`);
  if (!bytesEqual(fresh.spki, spkiDer(identity.key)) || fresh.cn !== identity.cert.cn) {
    throw new Error("the renewed certificate is for another key or prefix");
  }
  return fresh;
}

function checkRenewedCa(pem: string, identity: Identity): Certificate {
  if (!pem) throw new Error("the registry sent nothing");
  const fresh = parseCertificate(pem, "CA certificate");
  if (bytesEqual(fresh.der, identity.ca.der)) {
    throw new Error("the registry sent the same CA certificate back");
  }
  if (!bytesEqual(fresh.spki, identity.ca.spki) || fresh.serial !== identity.ca.serial) {
    throw new Error("the new CA certificate has another key or network");
  }
  return fresh;
}
