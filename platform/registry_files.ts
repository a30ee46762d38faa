// The registry's files: the database folder and file (opened here), the group commit of its
// WAL, and the log folder.

import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { type DbOptions, type RegistryDb, registryDb } from "../core/registry/db.ts";
import type { DurableSync } from "../core/registry/service.ts";

/**
 * Opens the registry database at `path` (":memory:" for tests): readied by prepareRegistryDb,
 * then checked and completed by core's registryDb.
 */
export async function openRegistryDatabase(
  path: string,
  opts: DbOptions = {},
): Promise<RegistryDb> {
  if (path !== ":memory:") await prepareRegistryDb(path);
  let sql: DatabaseSync;
  try {
    sql = new DatabaseSync(path);
  } catch (cause) {
    throw new Error(`Cannot open registry database "${path}"`, { cause });
  }
  return registryDb(sql, path, opts);
}

/**
 * Creates the folder of the log file `path` readable by its owner only (0700, whatever the
 * umask; an existing folder is left as it is). Nothing for "-" or "".
 */
export function prepareLogFolder(path: string): void {
  if (path === "" || path === "-") return;
  const dir = dirname(path);
  try {
    Deno.statSync(dir);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return; // LogFile will say what is wrong
  }
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700); // the umask may have taken bits away, never added
  } catch {
    // LogFile reports a folder it cannot use
  }
}

/**
 * Readies the registry database at `path` before SQLite opens it: creates its folder (0700, an
 * existing one is left as it is), and the file readable by its owner only (it holds tokens and
 * the Babel keys; SQLite gives a new WAL and shared-memory file the same mode, older ones are
 * brought back to it).
 */
export async function prepareRegistryDb(path: string): Promise<void> {
  const dir = dirname(path);
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new Error(`Cannot create the registry database folder "${dir}"`, { cause: e });
  }
  try {
    (await Deno.open(path, { create: true, write: true, mode: 0o600 })).close();
    await Deno.chmod(path, 0o600); // an older file, or a umask that took bits away
    for (const extra of [`${path}-wal`, `${path}-shm`]) {
      try {
        await Deno.chmod(extra, 0o600);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
  } catch (e) {
    throw new Error(`Cannot make the registry database "${path}" private (mode 0600)`, {
      cause: e,
    });
  }
}

/**
 * Group commit: fsyncs the SQLite WAL file off the JS thread; concurrent callers share one
 * fsync, and a caller arriving during an fsync waits for the next one (its commit may have
 * been written after that fsync started).
 */
export function walSyncer(walPath: string): DurableSync {
  let file: Deno.FsFile | null = null;
  let current: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const once = async () => {
    try {
      file ??= await Deno.open(walPath, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return; // nothing written yet
      throw e;
    }
    await file.syncData();
  };
  const sync = (): Promise<void> => {
    if (!current) {
      current = once().finally(() => current = null);
      return current;
    }
    next ??= current.catch(() => {}).then(() => {
      next = null;
      return sync();
    });
    return next;
  };
  return {
    sync,
    close() {
      file?.close();
      file = null;
    },
  };
}
