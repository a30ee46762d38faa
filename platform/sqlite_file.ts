// SQLite files holding secrets (the node's cache.db keeps decrypted Babel keys): created, or
// brought back, to mode 0600 before SQLite opens them. SQLite gives its journal and WAL files
// the mode of the database file.
import { DatabaseSync } from "node:sqlite";

/** Opens the SQLite database at `path`, creating it if needed, readable by its owner only. */
export function openPrivateDatabase(path: string): DatabaseSync {
  try {
    Deno.openSync(path, { create: true, write: true, mode: 0o600 }).close();
    Deno.chmodSync(path, 0o600); // an older file, or a umask that took bits away
  } catch (e) {
    throw new Error(`Cannot make "${path}" private (mode 0600)`, { cause: e });
  }
  return new DatabaseSync(path);
}
