// Countries for `same_country` on the node (PROTOCOL.md §7.10, §7.11): the GeoIP database named
// by GEOIP2_MMDB, opened only in a network that sets same_country, gives the country of peer
// addresses that carry none and, before the registry's getCountry, our own.

import { describeError } from "../errors.ts";
import type { GeoIpDatabase } from "../geoip.ts";
import type { Logger } from "../log.ts";
import { lookupOwnCountries, type OwnAddresses } from "./addresses.ts";

/** Country of an address by the local GeoIP database, or undefined when unknown. */
export type CountryLookup = (ip: string) => string | undefined;

/**
 * The local country lookup when the network sets `same_country` and GEOIP2_MMDB names a
 * database (`open`); null otherwise, or when the file cannot be used (one warning: the node
 * then filters only addresses that carry a country).
 */
export async function openCountryLookup(
  open: (() => Promise<GeoIpDatabase>) | undefined,
  sameCountry: readonly string[],
  log: Logger,
): Promise<CountryLookup | null> {
  if (!open) return null;
  if (!sameCountry.length) {
    log.info("GEOIP2_MMDB not read: the network sets no same_country");
    return null;
  }
  let db: GeoIpDatabase;
  try {
    db = await open();
  } catch (e) {
    log.warn(
      `${describeError(e)}; running without it: only peer addresses that carry a country ` +
        "are filtered by same_country",
    );
    return null;
  }
  log.info(`GeoIP database ${db.description}: countries of peer addresses looked up`);
  let failed = false;
  return (ip) => {
    try {
      return db.lookup(ip)?.country;
    } catch (e) {
      if (!failed) log.warn(`${describeError(e)}; such addresses count as of unknown country`);
      failed = true;
      return undefined;
    }
  };
}

/** What {@link ownCountries} works with. */
export interface OwnCountriesInput {
  own: OwnAddresses;
  /** The local GeoIP lookup, asked first; null: none. */
  local: CountryLookup | null;
  /** The registry's getCountry. */
  registry(ip: string): Promise<string | null>;
  /** Our address list changed (a country was found): save it. */
  save(text: string): void;
  log: Logger;
}

/**
 * Our own countries (network parameter `same_country`, no `--country`, §7.10): refresh() looks
 * up the first address of each family, locally then at the registry; call it at start and when
 * our address list changes (a learned address): only addresses without a country found yet are
 * looked up again. Refreshes run one after the other.
 */
export function ownCountries(i: OwnCountriesInput): { refresh(): Promise<void> } {
  /** Countries found so far, by address: a refresh asks only about new addresses. */
  const found = new Map<string, string>();
  const countryOf = async (ip: string) => {
    const code = found.get(ip) ?? i.local?.(ip) ?? await i.registry(ip);
    if (code) found.set(ip, code);
    return code;
  };
  let last: Promise<void> = Promise.resolve();
  return {
    refresh() {
      last = last.then(async () => {
        if (await lookupOwnCountries(i.own, countryOf, i.log)) i.save(i.own.text());
      });
      return last;
    },
  };
}
