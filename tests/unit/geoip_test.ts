// The GeoIP reader (platform/geoip.ts) through npm mmdb-lib on files written by
// tests/helpers/mmdb.ts, and what core/geoip.ts makes of addresses and records.
import assert from "node:assert/strict";
import { geoIpAddress, locationOfRecord } from "../../core/geoip.ts";
import { GeoIpFileError, openGeoIp } from "../../platform/geoip.ts";
import { countryRecord, writeMmdb, writeTestGeoIp } from "../helpers/mmdb.ts";

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "re6st-geoip-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a written MaxMind DB answers country and continent of IPv4, mapped and IPv6 addresses", async () => {
  await withDir(async (dir) => {
    const db = await openGeoIp(await writeTestGeoIp(dir));
    assert.match(
      db.description,
      /GeoLite2-Country\.mmdb" \(re6st-Test-Country, built 2023-11-14\)$/,
    );
    assert.deepEqual(db.lookup("203.0.113.5"), { country: "FR", continent: "EU" });
    assert.deepEqual(db.lookup("::ffff:203.0.113.200"), { country: "FR", continent: "EU" });
    assert.deepEqual(db.lookup("198.51.100.1"), { country: "JP", continent: "AS" });
    assert.deepEqual(db.lookup("198.51.100.200"), { continent: "EU" }, "continent only");
    assert.deepEqual(db.lookup("192.0.2.77"), { country: "AU", continent: "OC" });
    assert.deepEqual(db.lookup("2001:db8:f00f::1"), { country: "DE", continent: "EU" });
    assert.equal(db.lookup("2001:db8:e000::1"), null, "IPv6 outside every network");
    assert.equal(db.lookup("10.0.0.1"), null, "IPv4 outside every network");
    assert.deepEqual(db.lookup("::cb00:7105"), db.lookup("203.0.113.5"), "::/96 holds IPv4");
    for (const bad of ["", "registry.example", "203.0.113.5:80", "fe80::1%eth0", "1.2.3"]) {
      assert.equal(db.lookup(bad), null, bad);
    }
  });
});

Deno.test("an IPv4-only database answers IPv4 and never an IPv6 address", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/v4.mmdb`;
    await Deno.writeFile(
      path,
      writeMmdb([{ network: "0.0.0.0/1", data: countryRecord("US", "NA") }], { ipVersion: 4 }),
    );
    const db = await openGeoIp(path);
    assert.deepEqual(db.lookup("127.0.0.1"), { country: "US", continent: "NA" });
    assert.equal(db.lookup("128.0.0.1"), null);
    assert.equal(db.lookup("::1"), null, "not the first 32 bits of an IPv6 address");
  });
});

Deno.test("a missing, unreadable or malformed database is one error naming the file and GEOIP2_MMDB", async () => {
  await withDir(async (dir) => {
    const good = writeMmdb([{ network: "192.0.2.0/24", data: countryRecord("FR", "EU") }]);
    // The marker and metadata alone: a tree that does not fit in the file.
    const metadata = new TextDecoder("latin1").decode(good).lastIndexOf("MaxMind.com") - 3;
    const cases: [string, Uint8Array | null, RegExp][] = [
      ["missing.mmdb", null, /No such file|not found/i],
      ["text.mmdb", new TextEncoder().encode("country FR\n"), /not a MaxMind DB file/],
      ["cut.mmdb", good.slice(0, good.length - 40), /damaged MaxMind DB file/],
      ["head.mmdb", good.slice(0, 900), /no metadata marker/],
      ["tail.mmdb", good.slice(metadata), /truncated: its search tree of \d+ nodes/],
      ["empty.mmdb", new Uint8Array(), /not a MaxMind DB file/],
    ];
    for (const [name, bytes, why] of cases) {
      const path = `${dir}/${name}`;
      if (bytes) await Deno.writeFile(path, bytes);
      const e = await openGeoIp(path).then(() => null, (e) => e);
      assert.ok(e instanceof GeoIpFileError, name);
      assert.match(e.message, /^Cannot use the GeoIP database ".*" \(GEOIP2_MMDB\): /, name);
      assert.ok(e.message.includes(path), name);
      assert.match(e.message, why, name);
      assert.ok(!e.message.includes("\n"), name);
    }
    await Deno.mkdir(`${dir}/folder.mmdb`);
    await assert.rejects(() => openGeoIp(`${dir}/folder.mmdb`), GeoIpFileError);
  });
});

Deno.test("addresses are looked up as IP literals, IPv4-mapped ones as IPv4", () => {
  assert.equal(geoIpAddress("203.0.113.5"), "203.0.113.5");
  assert.equal(geoIpAddress("::FFFF:203.0.113.5"), "203.0.113.5");
  assert.equal(geoIpAddress("2001:db8::1"), "2001:db8::1");
  for (const bad of ["", "x", "203.0.113.256", "[::1]", "::1%lo", "1.2.3.4,1194,tcp"]) {
    assert.equal(geoIpAddress(bad), null, bad);
  }
});

Deno.test("a record's location: two-letter codes only, upper-cased, absent parts left out", () => {
  assert.deepEqual(locationOfRecord(countryRecord("fr", "eu")), { country: "FR", continent: "EU" });
  assert.deepEqual(locationOfRecord({ country: { iso_code: "FR" } }), { country: "FR" });
  assert.equal(locationOfRecord({ country: { iso_code: "F,R" }, continent: { code: 7 } }), null);
  assert.equal(locationOfRecord({ registered_country: { iso_code: "FR" } }), null);
  assert.equal(locationOfRecord(null), null);
  assert.equal(locationOfRecord("FR"), null);
});
