// The peer part of a node's cache (core/node/cache.ts NodeCache) kept in memory: ten
// thousand SQLite databases would cost gigabytes and milliseconds per tick. Same rules for
// what the tunnel code sees: address lists merged, `try` marks, at most PEER_CACHE_MAX peers
// (usable ones kept first), peers listed in random order.

import type { Bits } from "../../core/addressing.ts";
import { PEER_CACHE_MAX } from "../../core/constants.ts";
import type { CachedPeer, NodeCache } from "../../core/node/cache.ts";
import { type Random, shuffle } from "./rng.ts";

interface Row {
  address: string;
  tried: 0 | 1;
}

/** An in-memory NodeCache for one simulated node. */
export function memoryPeerCache(random: Random): NodeCache {
  const rows = new Map<Bits, Row>();
  let own: string | null = null;
  const trimTo = (max: number) => {
    if (rows.size <= max) return;
    const order = shuffle(random, [...rows.entries()]).sort((a, b) => a[1].tried - b[1].tried);
    for (const [p] of order.slice(max)) rows.delete(p);
  };
  return {
    config: () => ({}),
    version: () => null,
    storeConfig: () => [],
    ownAddress: () => own,
    setOwnAddress(address) {
      own = address;
    },
    addPeer(prefix, address, preferred) {
      const old = rows.get(prefix);
      const incoming = address.split(";").filter((e) => e);
      let merged: string[];
      if (!old) {
        trimTo(PEER_CACHE_MAX - 1);
        merged = incoming;
      } else {
        const known = old.address.split(";").filter((e) => e);
        merged = [
          ...known.filter((e) => incoming.includes(e)),
          ...incoming.filter((e) => !known.includes(e)),
        ];
      }
      if (preferred !== undefined && merged.includes(preferred)) {
        merged = [preferred, ...merged.filter((e) => e !== preferred)];
      }
      rows.set(prefix, { address: merged.join(";"), tried: 0 });
    },
    hasPeer: (prefix) => rows.has(prefix),
    knownAddress: (prefix) => rows.get(prefix)?.address ?? null,
    peerAddress(prefix) {
      const r = rows.get(prefix);
      return r && r.tried === 0 ? r.address : null;
    },
    peers(o = {}) {
      const out: CachedPeer[] = [];
      for (const [prefix, r] of rows) {
        if (r.tried === (o.tried ?? 0) && prefix !== o.exclude) {
          out.push({ prefix, address: r.address });
        }
      }
      return shuffle(random, out);
    },
    setTry(prefix, value) {
      const r = rows.get(prefix);
      if (r) r.tried = value;
    },
    removePeer(prefix) {
      rows.delete(prefix);
    },
    peerCount: () => rows.size,
    usablePeerCount() {
      let n = 0;
      for (const r of rows.values()) if (r.tried === 0) n++;
      return n;
    },
    shrink(n) {
      trimTo(Math.max(0, n));
    },
    close() {
      rows.clear();
    },
  };
}
