// The node's countries for same_country (core/node/countries.ts): the local GeoIP lookup, and
// our own countries found locally before the registry is asked.
import assert from "node:assert/strict";
import { memoryLogger } from "../../core/log.ts";
import { createOwnAddresses } from "../../core/node/addresses.ts";
import { openCountryLookup, ownCountries } from "../../core/node/countries.ts";
import { NET } from "../helpers/tunnel_fakes.ts";

const servers = [{ port: 1194, proto: "tcp" as const }, { port: 1194, proto: "tcp6" as const }];

Deno.test("our countries come from the local database first, the registry for the rest", async () => {
  const own = createOwnAddresses({
    ips: [],
    servers,
    network: NET,
    local: ["10.0.0.5/24", "2001:db8:f00f::5/64"],
    withCountry: true,
  });
  const asked: string[] = [];
  const saved: string[] = [];
  const log = memoryLogger(3);
  const countries = ownCountries({
    own,
    local: (ip) => (ip.startsWith("203.0.113.") ? "FR" : undefined),
    registry: (ip) => {
      asked.push(ip);
      return Promise.resolve(ip.startsWith("2001:") ? "DE" : null);
    },
    save: (text) => saved.push(text),
    log,
  });
  await countries.refresh();
  assert.deepEqual(asked, ["10.0.0.5", "2001:db8:f00f::5"], "nothing known locally");
  assert.deepEqual(saved, ["10.0.0.5,1194,tcp;2001:db8:f00f::5,1194,tcp6,DE"]);
  // A server tells us our public IPv4 address: its country is found locally.
  assert.equal(own.learn("203.0.113.40"), true);
  await countries.refresh();
  assert.deepEqual(asked.slice(2), [], "IPv4 found locally, IPv6 known already");
  assert.equal(saved.at(-1), "203.0.113.40,1194,tcp,FR;2001:db8:f00f::5,1194,tcp6,DE");
  assert.ok(log.lines.some((l) => l.includes("Our country for IPv4 (203.0.113.40): FR")));
});

Deno.test("a database whose lookups fail says so once and counts those addresses as unknown", async () => {
  const log = memoryLogger(3);
  const lookup = await openCountryLookup(
    () =>
      Promise.resolve({
        description: '"/x.mmdb" (test)',
        lookup: (ip: string) => {
          if (ip === "192.0.2.1") return { country: "AU" };
          throw new Error("GeoIP database /x.mmdb: cannot read the record of " + ip);
        },
      }),
    ["FR"],
    log,
  );
  assert.ok(lookup);
  assert.equal(lookup("192.0.2.1"), "AU");
  assert.equal(lookup("198.51.100.1"), undefined);
  assert.equal(lookup("198.51.100.2"), undefined);
  const warnings = log.lines.filter((l) => l.includes("WARNING"));
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /cannot read the record of 198\.51\.100\.1; such addresses count/);
  assert.equal(await openCountryLookup(undefined, ["FR"], log), null, "no GEOIP2_MMDB");
});
