// The registry's state (PROTOCOL.md §4–§5): database, CA, certificate index, sessions,
// network configuration and its signed version, expiry clean-up.

import { type Bits, networkCidr } from "../addressing.ts";
import { type Certificate, networkOfCa, parseCertificate } from "../cert.ts";
import { BABEL_KEY_BYTES, CERT_LIFETIME_S } from "../constants.ts";
import { loadPrivateKey, modulusBits, type PrivateKey, randomBytes } from "../crypto.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { nextVersionBlob } from "../netconfig/version.ts";
import { decodePacked } from "../packed.ts";
import { freePrefix, mergeFreeBlocks, PENDING } from "./allocation.ts";
import { type CertInfo, CertStore } from "./cert_index.ts";
import {
  checkCommunitiesAgainstTree,
  type Community,
  DEFAULT_COMMUNITIES,
  parseCommunities,
} from "./communities.ts";
import { FFDHE2048_PEM } from "../dh.ts";
import { type RegistryConfig, resolveRegistryConfig } from "./config.ts";
import type { ResolvedRegistryConfig } from "./config.ts";
import type { ConfigValue, RegistryDb } from "./db.ts";
import { Mutex } from "./mutex.ts";
import {
  type BabelKeys,
  canonicalConfig,
  documentFor,
  documentHead,
  type Json,
  lastConfigText,
  type PublishedOptions,
  rotateBabelKeys,
} from "./netconfig.ts";
import { builtinRsa, type RsaEngine } from "./rsa.ts";
import { SessionTable } from "./sessions.ts";
import { type Clock, systemClock } from "../clock.ts";
import { expireTokens, oldestTokenDate } from "./tokens.ts";

export type { CertInfo } from "./cert_index.ts";

/** What a registry takes besides its configuration, files and database. */
export interface RegistryDeps {
  log: Logger;
  clock?: Clock;
  /** The RSA engine for the CA key (default: the built-in code). */
  rsa?: (caKey: PrivateKey) => RsaEngine;
}

/** Files the registry reads at start-up, already loaded by the caller. */
export interface RegistryMaterial {
  caPem: string;
  keyPem: string;
  /** DH parameters (PEM); null serves the built-in ffdhe2048 group. */
  dhPem: string | null;
  /** Text of the communities file, if any, and its name for errors. */
  communities?: { text: string; source: string };
}

/** The registry cannot go on (clock or database inconsistent); the process should stop. */
export class RegistryFatalError extends Error {
  override name = "RegistryFatalError";
}

/** The state of a running registry. All database writes go through `db.tx`. */
export class Registry {
  readonly config: ResolvedRegistryConfig;
  readonly db: RegistryDb;
  readonly ca: Certificate;
  readonly caKey: PrivateKey;
  readonly dhPem: string;
  /** Network bit-string (from the CA serial, §1.1) and the maximal prefix length. */
  readonly network: Bits;
  readonly maxPrefixLength: number;
  /** CA subject emailAddress: From of token mails (§3.3). */
  readonly caEmail: string | undefined;
  readonly communities: readonly Community[];
  readonly sessions = new SessionTable();
  readonly clock: Clock;
  readonly log: Logger;
  /** RSA with the CA key and node keys. */
  readonly rsa: RsaEngine;
  /** Stored certificates by prefix (indexed from the database at start-up). */
  readonly certs: CertStore;
  /** Serialises every database write. */
  readonly writeLock = new Mutex();
  #published: PublishedOptions;
  /** What getNetworkConfig sends every node until the next change. */
  #net: { head: string; keys: BabelKeys } | null = null;
  /** The configuration changed since the last run (new options or software): version bumped. */
  bumpedAtStart = false;

  private constructor(
    config: ResolvedRegistryConfig,
    db: RegistryDb,
    material: RegistryMaterial,
    deps: RegistryDeps,
  ) {
    this.config = config;
    this.db = db;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log;
    this.ca = parseCertificate(material.caPem, `CA certificate "${config.ca}"`);
    this.caKey = loadPrivateKey(material.keyPem, `CA key "${config.key}"`);
    if (modulusBits(this.caKey) !== modulusBits(this.ca.publicKey)) {
      throw new Error(`CA key "${config.key}" does not match CA certificate "${config.ca}"`);
    }
    this.certs = new CertStore(db);
    this.dhPem = material.dhPem ?? FFDHE2048_PEM;
    this.network = networkOfCa(this.ca);
    this.maxPrefixLength = 128 - this.network.length;
    this.caEmail = this.ca.subject.find((a) => a.name === "emailAddress")?.value;
    this.communities = material.communities
      ? parseCommunities(material.communities.text, material.communities.source)
      : DEFAULT_COMMUNITIES;
    this.#published = {
      minProtocol: config.minProtocol,
      clientCount: config.clientCount,
      maxClients: config.maxClients,
      tunnelRefresh: config.tunnelRefresh,
      hello: config.hello,
      encrypt: config.encrypt,
      ipv4: config.ipv4,
      sameCountry: config.sameCountry.length ? config.sameCountry : undefined,
    };
    this.rsa = (deps.rsa ?? builtinRsa)(this.caKey); // last: nothing after it can fail
  }

  /**
   * Takes the open database, indexes the certificates, creates the first Babel key of a fresh
   * network, bumps the version when the published configuration changed, and cleans up. The
   * database and the RSA engine are closed if it fails.
   */
  static open(
    config: RegistryConfig,
    material: RegistryMaterial,
    db: RegistryDb,
    deps: RegistryDeps,
  ): Registry {
    let r: Registry | undefined;
    try {
      r = new Registry(resolveRegistryConfig(config), db, material, deps);
      r.#start();
      return r;
    } catch (e) {
      r?.rsa.close();
      db.close();
      throw e;
    }
  }

  #start(): void {
    const pending = this.db.sql.prepare("SELECT prefix FROM cert WHERE cert = ?").all(PENDING);
    if (pending.length) {
      this.db.tx(() => {
        for (const row of pending) freePrefix(this.db, String(row.prefix));
        mergeFreeBlocks(this.db);
      });
      this.log.warn(`Freed ${pending.length} prefix(es) of certificates interrupted while signed`);
    }
    const { unreadable, rebuilt } = this.certs.load();
    if (rebuilt) this.log.info(`Certificate index rebuilt: ${this.certs.size} certificates`);
    for (const u of unreadable.slice(0, 10)) {
      this.log.error(
        `Ignoring unreadable stored certificate of ${u.prefix}: ${describeError(u.error)}`,
      );
    }
    if (unreadable.length > 10) {
      this.log.error(`${unreadable.length} stored certificates are unreadable in all`);
    }
    checkCommunitiesAgainstTree(this.db, this.communities);
    const prefix = this.registryPrefix;
    this.db.tx(() => {
      if (prefix === null) {
        const keys = this.babelKeys();
        if (!keys.h0 && !keys.h1 && !keys.h2) {
          this.db.setConfig("babel_hmac0", randomBytes(BABEL_KEY_BYTES));
        }
      } else if (this.db.getConfig("last_config") !== lastConfigText(this.canonical())) {
        this.bumpedAtStart = true;
        this.bumpVersion();
        this.log.info(`Network configuration changed: new version ${this.versionNumber()}`);
      }
    });
    this.#net = null;
    this.cleanup();
    this.log.info(
      `Registry for network ${networkCidr(this.network)} ready: ${this.certs.size} certificates, ` +
        `version ${this.versionNumber()}`,
    );
  }

  /** Runs `fn` holding the write lock (use for every database change). */
  exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.writeLock.run(fn);
  }

  /** PKCS1-SIG with the CA key (§3.1). */
  sign(data: Uint8Array): Promise<Uint8Array> {
    return this.rsa.sign(data);
  }

  /** Closes the database and the RSA engine. */
  close(): void {
    this.db.close();
    this.rsa.close();
  }

  /** Current time in UNIX seconds (float). */
  nowS(): number {
    return this.clock.now() / 1000;
  }

  /** Prefix of the registry node (first certificate issued), or null before it. */
  get registryPrefix(): Bits | null {
    const v = this.db.getConfig("prefix");
    return typeof v === "string" ? v : null;
  }

  /** Revoked certificate serials, ascending (§3.7). */
  crl(): number[] {
    return (this.db.sql.prepare("SELECT serial FROM crl ORDER BY serial").all() as {
      serial: number;
    }[]).map((r) => Number(r.serial));
  }

  /** Whether certificate serial `serial` is revoked. */
  isRevoked(serial: bigint): boolean {
    return this.db.prepare("SELECT 1 FROM crl WHERE serial = ?").get(serial) !== undefined;
  }

  /** Canonical configuration (§4.8) from the current database. */
  canonical(): Record<string, Json> {
    return canonicalConfig(this.#published, this.registryPrefix ?? "", this.crl());
  }

  /** Stored Babel keys (§4.9). */
  babelKeys(): BabelKeys {
    const get = (n: string) => {
      const v = this.db.getConfig(n);
      return v instanceof Uint8Array ? v : v === undefined || v === null ? null : new Uint8Array();
    };
    return { h0: get("babel_hmac0"), h1: get("babel_hmac1"), h2: get("babel_hmac2") };
  }

  /** Current signed version blob (`00` before the first bump). */
  versionBlob(): Uint8Array {
    const v = this.db.getConfig("version");
    return v instanceof Uint8Array && v.length ? v : Uint8Array.of(0);
  }

  /** Current version number. */
  versionNumber(): number {
    return Number(decodePacked(this.versionBlob()).value);
  }

  /** Signs and stores version V+1 and the canonical configuration (call inside db.tx). */
  bumpVersion(): void {
    this.db.setConfig("version", nextVersionBlob(this.versionBlob(), this.caKey));
    if (this.registryPrefix !== null) {
      this.db.setConfig("last_config", lastConfigText(this.canonical()));
    }
    this.#net = null;
  }

  /** The getNetworkConfig body for `info`'s node (§4.7). */
  networkConfigFor(info: CertInfo): Uint8Array {
    if (!this.#net) {
      const time = (name: string) => {
        const v = this.db.getConfig(name);
        return typeof v === "number" ? v : null;
      };
      this.#net = {
        head: documentHead(this.canonical(), this.versionBlob(), {
          validUntil: time("valid_until"),
          keySwitchAt: time("babel_key_switch_at"),
        }),
        keys: this.babelKeys(),
      };
    }
    return documentFor(this.#net.head, this.#net.keys, (data) => this.rsa.encrypt(info.spki, data));
  }

  /** Advances the Babel key rotation and bumps the version (§4.9). */
  updateHMAC(): void {
    this.db.tx(() => {
      const r = rotateBabelKeys(
        this.babelKeys(),
        this.nowS(),
        () => randomBytes(BABEL_KEY_BYTES),
        this.config.keySwitchDelay,
      );
      const set = (n: string, v: Uint8Array | null) =>
        v === null ? this.db.deleteConfig(n) : this.db.setConfig(n, v as ConfigValue);
      set("babel_hmac0", r.keys.h0);
      set("babel_hmac1", r.keys.h1);
      set("babel_hmac2", r.keys.h2);
      for (
        const [name, v] of [["valid_until", r.validUntil], [
          "babel_key_switch_at",
          r.keySwitchAt,
        ]] as const
      ) {
        if (v === null) this.db.deleteConfig(name);
        else this.db.setConfig(name, v);
      }
      this.bumpVersion();
    });
    this.#net = null;
  }

  /**
   * Expiry clean-up (§5.7): old tokens, certificates expired for longer than the grace period,
   * block merging. Returns the UNIX time (s) of the next run, or null when nothing is pending.
   */
  cleanup(): number | null {
    const limit = this.nowS() - this.config.gracePeriod;
    const expired = this.certs.expiredBy(limit);
    const own = this.registryPrefix;
    if (own !== null && expired.includes(own)) {
      throw new RegistryFatalError(
        `The certificate of the registry node ${own} expired more than the grace period ago: ` +
          `wrong clock or inconsistent database; stopping`,
      );
    }
    let tokens = 0;
    this.db.tx(() => {
      tokens = expireTokens(this.db, Math.floor(limit));
      for (const prefix of expired) this.certs.remove(prefix);
      if (expired.length) mergeFreeBlocks(this.db);
    });
    for (const prefix of expired) this.sessions.drop(prefix);
    if (tokens || expired.length) {
      this.log.info(`Clean-up: ${tokens} token(s) and ${expired.length} certificate(s) expired`);
    }
    return this.nextCleanupS();
  }

  /** UNIX time (s) at which the next clean-up is due, or null. */
  nextCleanupS(): number | null {
    const dates = [this.certs.firstExpiryS(), oldestTokenDate(this.db)]
      .filter((d): d is number => d !== null);
    return dates.length ? Math.min(...dates) + this.config.gracePeriod : null;
  }

  /** Validity end of a certificate issued now (§3.5). */
  newNotAfter(now: Date): Date {
    return new Date(now.getTime() + CERT_LIFETIME_S * 1000);
  }
}
