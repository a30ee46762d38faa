// Communities (PROTOCOL.md §5.4): which part of the network a node's prefix comes from,
// chosen by its country or continent.

import type { Bits } from "../addressing.ts";
import { containingRow } from "./allocation.ts";
import type { RegistryDb } from "./db.ts";

/** One community: a prefix and the locations (`FR`, `@EU`, `*`) it serves, in file order. */
export interface Community {
  prefix: Bits;
  locations: string[];
}

/** The communities file is malformed or conflicts with the allocation tree. */
export class CommunityError extends Error {
  override name = "CommunityError";
}

/** The implicit configuration without a file: one default community "" (§5.4). */
export const DEFAULT_COMMUNITIES: readonly Community[] = [{ prefix: "", locations: ["*"] }];

/** Parses a communities file (§5.4); `source` names it in errors. */
export function parseCommunities(text: string, source = "communities"): Community[] {
  const out: Community[] = [];
  const seen = new Set<string>();
  let defaults = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [prefix, ...locations] = line.split(/\s+/);
    const where = `${source}:${i + 1}`;
    if (!/^[01]*$/.test(prefix) || prefix.length > 128) {
      throw new CommunityError(`${where}: invalid community prefix ${JSON.stringify(prefix)}`);
    }
    if (!locations.length) {
      throw new CommunityError(`${where}: community ${prefix} has no location`);
    }
    for (const loc of locations) {
      if (!/^(\*|@?[A-Za-z0-9]{2,3})$/.test(loc)) {
        throw new CommunityError(`${where}: invalid location ${JSON.stringify(loc)}`);
      }
    }
    if (seen.has(prefix)) throw new CommunityError(`${where}: community ${prefix} listed twice`);
    seen.add(prefix);
    defaults += locations.filter((l) => l === "*").length;
    out.push({ prefix, locations });
  });
  if (defaults !== 1) {
    throw new CommunityError(
      `${source}: exactly one community must have the default location "*" (found ${defaults})`,
    );
  }
  const sorted = out.map((c) => c.prefix).sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].startsWith(sorted[i - 1])) {
      throw new CommunityError(
        `${source}: community ${sorted[i]} overlaps community ${sorted[i - 1]}`,
      );
    }
  }
  return out;
}

/** Throws unless every community lies in a free block or an already split one (§5.4). */
export function checkCommunitiesAgainstTree(db: RegistryDb, communities: readonly Community[]) {
  for (const c of communities) {
    const row = containingRow(db, c.prefix);
    if (row !== undefined && (row.cert !== null || row.email !== null) && c.prefix !== "") {
      throw new CommunityError(`Prefix ${row.prefix} contains community ${c.prefix}`);
    }
  }
}

/**
 * Community for a node at (country, continent), continent being "@XX" or "*" (§5.4): first by
 * country, then by continent, then the default.
 */
export function selectCommunity(
  communities: readonly Community[],
  country: string,
  continent: string,
): Bits {
  return (communities.find((c) => c.locations.includes(country)) ??
    communities.find((c) => c.locations.includes(continent)) ??
    communities.find((c) => c.locations.includes("*")))?.prefix ?? "";
}
