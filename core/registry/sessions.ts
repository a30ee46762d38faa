// Registry-side HMAC sessions (PROTOCOL.md §4.3): per prefix, at most two (key, protocol)
// entries; every authenticated request moves the key chain forward. Memory only.

import type { Bits } from "../addressing.ts";
import { bytesEqual } from "../crypto.ts";
import { nextKeys, requestMac } from "./hmac.ts";

/** One session entry: the current chain key and the protocol announced in `hello`. */
export interface SessionEntry {
  key: Uint8Array;
  protocol: number;
}

/** Outcome of checking an authenticated request. */
export type SessionCheck =
  | { ok: true; protocol: number; responseKey: Uint8Array }
  | { ok: false; status: 400 | 401 };

/** The sessions of all prefixes. */
export class SessionTable {
  #sessions = new Map<Bits, SessionEntry[]>();

  /** Records the new secret of a `hello`: entry 0 stays, the new one replaces the rest. */
  hello(prefix: Bits, key: Uint8Array, protocol: number): void {
    const list = this.#sessions.get(prefix);
    const entry = { key, protocol };
    this.#sessions.set(prefix, list?.length ? [list[0], entry] : [entry]);
  }

  /**
   * Checks the request MAC of `target` for `prefix`; on success the chain moves on (the list
   * becomes the single next key) and the key to MAC the response with is returned.
   */
  check(prefix: Bits, target: string, mac: Uint8Array): SessionCheck {
    const list = this.#sessions.get(prefix);
    if (!list?.length) return { ok: false, status: 401 };
    for (const entry of list) {
      if (bytesEqual(requestMac(entry.key, target), mac)) {
        const { k1, next } = nextKeys(entry.key);
        this.#sessions.set(prefix, [{ key: next, protocol: entry.protocol }]);
        return { ok: true, protocol: entry.protocol, responseKey: k1 };
      }
    }
    return { ok: false, status: 400 };
  }

  /** Forgets the session of `prefix` (revocation by CN). */
  drop(prefix: Bits): void {
    this.#sessions.delete(prefix);
  }

  /** Current entries of `prefix` (for tests). */
  entries(prefix: Bits): readonly SessionEntry[] {
    return this.#sessions.get(prefix) ?? [];
  }

  /** Number of prefixes with a session. */
  get size(): number {
    return this.#sessions.size;
  }
}
