// A MaxMind DB file (GeoLite2/GeoIP2 Country or City) read through npm `mmdb-lib`, the reader
// the `maxmind` package is built on (it adds file watching and a cache we do not need). The
// whole file is read into memory once; lookups are synchronous. Imported only when
// GEOIP2_MMDB is set (cmd/registry_daemon.ts, platform/node_parts.ts).

import { Buffer } from "node:buffer";
import { Reader } from "mmdb-lib";
import { describeError } from "../core/errors.ts";
import { GEOIP_ENV, geoIpAddress, type GeoIpDatabase, locationOfRecord } from "../core/geoip.ts";

/** The database cannot be used: names the file and the variable that named it. */
export class GeoIpFileError extends Error {
  override name = "GeoIpFileError";
}

/** Separator between the search tree and the data section (MaxMind DB spec). */
const DATA_SEPARATOR_BYTES = 16;
/** Start of the metadata, its last occurrence in the file (MaxMind DB spec). */
const METADATA_MARKER = Uint8Array.from([
  0xab,
  0xcd,
  0xef,
  ...new TextEncoder().encode("MaxMind.com"),
]);
/** The metadata, marker included, is at most this long (MaxMind DB spec). */
const METADATA_MAX_BYTES = 128 * 1024;

/** Whether the metadata marker is in the last {@link METADATA_MAX_BYTES} of `bytes`. */
function hasMetadata(bytes: Uint8Array): boolean {
  const first = METADATA_MARKER[0];
  for (let i = bytes.length - METADATA_MARKER.length; i >= 0; i--) {
    if (bytes.length - i > METADATA_MAX_BYTES) return false;
    if (bytes[i] === first && METADATA_MARKER.every((b, j) => bytes[i + j] === b)) return true;
  }
  return false;
}

/** Reads and checks the MaxMind DB file at `path`; throws GeoIpFileError. */
export async function openGeoIp(path: string): Promise<GeoIpDatabase> {
  const fail = (why: string, cause?: unknown): never => {
    throw new GeoIpFileError(
      `Cannot use the GeoIP database "${path}" (${GEOIP_ENV}): ${why}`,
      cause === undefined ? undefined : { cause },
    );
  };
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    return fail(describeError(e), e);
  }
  if (!hasMetadata(bytes)) fail("not a MaxMind DB file (no metadata marker at its end)");
  let reader: Reader<Record<string, unknown>>;
  try {
    reader = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    return fail(`damaged MaxMind DB file (${describeError(e)})`, e);
  }
  const m = reader.metadata;
  if (m.binaryFormatMajorVersion !== 2) {
    fail(`MaxMind DB format ${m.binaryFormatMajorVersion}, only version 2 is read`);
  }
  if (m.ipVersion !== 4 && m.ipVersion !== 6) fail(`IP version ${m.ipVersion} in its metadata`);
  if (
    !Number.isInteger(m.nodeCount) ||
    m.searchTreeSize + DATA_SEPARATOR_BYTES > bytes.byteLength
  ) fail(`truncated: its search tree of ${m.nodeCount} nodes does not fit in the file`);
  const built = m.buildEpoch instanceof Date && !isNaN(m.buildEpoch.getTime())
    ? `, built ${m.buildEpoch.toISOString().slice(0, 10)}`
    : "";
  const description = `"${path}" (${m.databaseType || "untyped"}${built})`;
  return {
    description,
    lookup(ip) {
      const address = geoIpAddress(ip);
      // An IPv4-only tree would answer for the first 32 bits of an IPv6 address.
      if (address === null || (m.ipVersion === 4 && address.includes(":"))) return null;
      let record;
      try {
        record = reader.get(address);
      } catch (e) {
        throw new GeoIpFileError(
          `GeoIP database ${description}: cannot read the record of ${address}`,
          { cause: e },
        );
      }
      return locationOfRecord(record);
    },
  };
}
