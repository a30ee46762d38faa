// What the node mapped on the gateway, kept in a small file of its run folder
// (RUN_FILES.upnpRecord, `upnp.json`)
// so that the next start removes the mappings a killed node left — only those: the gateway
// must still list them with the recorded internal client and description.

import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Gateway, MappingProtocol, PortMapper } from "./port_mapper.ts";

/** Reads, writes and removes the record (the node gives one backed by `<run>/upnp.json`). */
export interface UpnpStore {
  /** The record's text, or null when there is none. */
  read(): Promise<string | null>;
  write(text: string): Promise<void>;
  /** Removes the record; nothing to do when absent. */
  remove(): Promise<void>;
}

/** The file operations a record needs (the node's files seam has them). */
export interface RecordFiles {
  /** Text of a file, or null when it does not exist. */
  readText(path: string): Promise<string | null>;
  writeText(path: string, text: string, mode?: number): Promise<void>;
  /** Removes a file; nothing to do when absent. */
  remove(path: string): Promise<void>;
}

/** The record kept in file `path` (normally `runFile(run, "upnpRecord")`). */
export function recordStore(files: RecordFiles, path: string): UpnpStore {
  return {
    read: () => files.readText(path),
    write: (text) => files.writeText(path, text, 0o644),
    remove: () => files.remove(path),
  };
}

/** One mapping of ours, as recorded. */
export interface RecordedMapping {
  protocol: MappingProtocol;
  externalPort: number;
  internalPort: number;
}

/** The mappings a node made (or was about to make) on one gateway. */
export interface UpnpRecord {
  /** Control URL of the gateway, for logs (a restarted gateway may have another). */
  gateway: string;
  /** Our address as the gateway saw it: the internal client of every mapping. */
  internalClient: string;
  /** Description given to every mapping. */
  description: string;
  mappings: RecordedMapping[];
}

/** Text of a record, one JSON object. */
export function formatRecord(r: UpnpRecord): string {
  return JSON.stringify(r) + "\n";
}

/** The record in `text`; throws with the reason when it is not one. */
export function parseRecord(text: string): UpnpRecord {
  const v = JSON.parse(text) as Partial<UpnpRecord>;
  const str = (x: unknown) => typeof x === "string";
  const port = (x: unknown) => Number.isInteger(x) && (x as number) > 0 && (x as number) < 65536;
  if (
    !v || !str(v.gateway) || !str(v.internalClient) || !str(v.description) ||
    !Array.isArray(v.mappings) ||
    !v.mappings.every((m) =>
      (m?.protocol === "TCP" || m?.protocol === "UDP") && port(m.externalPort) &&
      port(m.internalPort)
    )
  ) throw new Error("not a UPnP mapping record");
  return {
    gateway: v.gateway!,
    internalClient: v.internalClient!,
    description: v.description!,
    mappings: v.mappings.map((m) => ({
      protocol: m.protocol,
      externalPort: m.externalPort,
      internalPort: m.internalPort,
    })),
  };
}

/** Reads the record; a missing or unreadable one counts as none (unreadable: logged). */
export async function readRecord(
  store: UpnpStore,
  log: Logger,
): Promise<UpnpRecord | null> {
  let text: string | null;
  try {
    text = await store.read();
  } catch (e) {
    log.warn(`Cannot read the UPnP mapping record: ${describeError(e)}; ignoring it`);
    return null;
  }
  if (text === null) return null;
  try {
    return parseRecord(text);
  } catch (e) {
    log.warn(
      `Ignoring the UPnP mapping record of a previous run: ${describeError(e)}; ` +
        "its mappings, if any, expire with their lease",
    );
    return null;
  }
}

/**
 * Removes the mappings of `record` that `gw` still lists as ours (same external port and
 * protocol, internal client and description); returns how many it removed. Those it cannot
 * remove expire with their lease.
 */
export async function removeLeftovers(
  mapper: PortMapper,
  gw: Gateway,
  record: UpnpRecord,
  log: Logger,
): Promise<number> {
  if (!record.mappings.length) return 0;
  let listed;
  try {
    listed = await mapper.listMappings(gw);
  } catch (e) {
    log.warn(
      `Cannot list the mappings of UPnP gateway ${gw.controlUrl} to remove those a previous ` +
        `run left: ${describeError(e)}; they expire with their lease`,
    );
    return 0;
  }
  let removed = 0;
  for (const m of record.mappings) {
    const ours = listed.some((l) =>
      l.protocol === m.protocol && l.externalPort === m.externalPort &&
      l.internalClient === record.internalClient && l.description === record.description
    );
    if (!ours) continue;
    const what = `${m.externalPort}/${m.protocol.toLowerCase()} → ` +
      `${record.internalClient}:${m.internalPort}`;
    try {
      await mapper.deleteMapping(gw, m);
      log.info(`Removed UPnP mapping ${what} left by a previous run`);
      removed++;
    } catch (e) {
      log.warn(
        `Cannot remove UPnP mapping ${what} left by a previous run: ${describeError(e)}; ` +
          "it expires with its lease",
      );
    }
  }
  return removed;
}
