// Registry database (PROTOCOL.md §5.1, §5.2): the reference schema on an SQLite connection
// opened by platform/ (WAL journal), every change in one `BEGIN IMMEDIATE` transaction, with
// hooks that run once it committed or rolled back.

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";

/** A value of the untyped `config.value` column. */
export type ConfigValue = string | number | bigint | Uint8Array | null;

/** Columns of each table, in the reference order (§5.1). */
const TABLES: Record<string, string[]> = {
  config: ["name TEXT PRIMARY KEY NOT NULL", "value"],
  token: [
    "token TEXT PRIMARY KEY NOT NULL",
    "email TEXT NOT NULL",
    "prefix_len INTEGER NOT NULL",
    "date INTEGER NOT NULL",
  ],
  cert: ["prefix TEXT PRIMARY KEY NOT NULL", "email TEXT", "cert TEXT"],
  crl: ["serial INTEGER PRIMARY KEY NOT NULL", "date INTEGER NOT NULL"],
};

/**
 * Index of the free blocks of the allocation tree (§5.3): a partial index holds only the free
 * rows, so finding the longest free block reads those few rows instead of the whole table. The
 * reference checks its tables' texts only; it keeps this index up to date like any other.
 */
const FREE_BLOCKS_INDEX =
  "CREATE INDEX IF NOT EXISTS cert_free_blocks ON cert (prefix) WHERE cert IS NULL AND email IS NULL";

/** The exact `CREATE TABLE` text the reference uses for `name` (§5.1). */
export function createTableSql(name: string): string {
  return `CREATE TABLE ${name} (` + TABLES[name].map((c) => "\n  " + c).join(",") + ")";
}

/** The database refuses to open: foreign schema, unreadable file. */
export class RegistryDbError extends Error {
  override name = "RegistryDbError";
}

/** An open registry database. */
export interface RegistryDb {
  /** The underlying connection (for prepared statements of the other registry modules). */
  readonly sql: DatabaseSync;
  /** Path of the file (":memory:" in tests). */
  readonly path: string;
  /** The prepared statement of `text`, prepared once per connection. */
  prepare(text: string): StatementSync;
  /** Runs `fn` inside `BEGIN IMMEDIATE … COMMIT`; rolls back and rethrows on error. */
  tx<T>(fn: () => T): T;
  /** Runs `fn` once the current transaction committed (call inside tx). */
  afterCommit(fn: () => void): void;
  /** Runs `fn` if the current transaction rolls back (call inside tx). */
  onRollback(fn: () => void): void;
  /** Value of a `config` row, or undefined when absent. */
  getConfig(name: string): ConfigValue | undefined;
  /** Inserts or replaces a `config` row (call inside tx). */
  setConfig(name: string, value: ConfigValue): void;
  /** Deletes a `config` row (call inside tx). */
  deleteConfig(name: string): void;
  close(): void;
}

/** Options of registryDb. */
export interface DbOptions {
  /**
   * true: commits only write the WAL (synchronous=NORMAL; still safe against a process kill)
   * and the caller makes them durable with an fsync of the `-wal` file before answering
   * (group commit, see platform/registry_files.ts); false (default): every commit fsyncs
   * (synchronous=FULL).
   */
  deferredSync?: boolean;
}

/**
 * The registry database on `sql`, a connection to `path` (created if needed): checks the
 * schema texts and creates what is missing. Closes `sql` when it refuses it.
 */
export function registryDb(sql: DatabaseSync, path: string, opts: DbOptions = {}): RegistryDb {
  try {
    sql.exec("PRAGMA busy_timeout = 5000");
    if (path !== ":memory:") {
      const mode = sql.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
      if (mode.journal_mode.toLowerCase() !== "wal") {
        throw new RegistryDbError(`Cannot switch "${path}" to WAL (got ${mode.journal_mode})`);
      }
    }
    // A certificate handed out must be on disk before the answer: either every commit
    // fsyncs, or the caller fsyncs the WAL before answering (deferredSync).
    sql.exec(`PRAGMA synchronous = ${opts.deferredSync ? "NORMAL" : "FULL"}`);
    createTables(sql, path);
  } catch (e) {
    sql.close();
    throw e;
  }
  const statements = new Map<string, StatementSync>();
  const getStmt = sql.prepare("SELECT value FROM config WHERE name = ?");
  const setStmt = sql.prepare("INSERT OR REPLACE INTO config (name, value) VALUES (?, ?)");
  const delStmt = sql.prepare("DELETE FROM config WHERE name = ?");
  let depth = 0;
  let committed: (() => void)[] = [];
  let rolledBack: (() => void)[] = [];
  const rollback = () => {
    try {
      sql.exec("ROLLBACK");
    } catch {
      // The transaction may already be rolled back by SQLite itself.
    }
  };
  const inTx = (what: string) => {
    if (depth === 0) throw new RegistryDbError(`${what} outside a registry database transaction`);
  };
  return {
    sql,
    path,
    prepare(text) {
      let s = statements.get(text);
      if (!s) statements.set(text, s = sql.prepare(text));
      return s;
    },
    tx<T>(fn: () => T): T {
      if (depth > 0) throw new RegistryDbError("Nested registry database transaction");
      sql.exec("BEGIN IMMEDIATE");
      depth++;
      let ok = false;
      let result: T;
      try {
        result = fn();
        sql.exec("COMMIT");
        ok = true;
      } catch (e) {
        rollback();
        throw e;
      } finally {
        depth--;
        const hooks = ok ? committed : rolledBack;
        committed = [];
        rolledBack = [];
        for (const h of hooks) h();
      }
      return result;
    },
    afterCommit(fn) {
      inTx("afterCommit");
      committed.push(fn);
    },
    onRollback(fn) {
      inTx("onRollback");
      rolledBack.push(fn);
    },
    getConfig(name) {
      const row = getStmt.get(name) as { value: ConfigValue } | undefined;
      return row === undefined ? undefined : row.value;
    },
    setConfig(name, value) {
      setStmt.run(name, value as SQLInputValue);
    },
    deleteConfig(name) {
      delStmt.run(name);
    },
    close() {
      if (sql.isOpen) sql.close();
    },
  };
}

function createTables(sql: DatabaseSync, path: string): void {
  sql.exec("BEGIN IMMEDIATE");
  try {
    for (const name of Object.keys(TABLES)) {
      const want = createTableSql(name);
      const row = sql.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
        .get(name) as { sql: string } | undefined;
      if (row === undefined) {
        sql.exec(want);
        // A fresh allocation tree is one free block: the whole network (§5.1).
        if (name === "cert") sql.exec("INSERT INTO cert VALUES ('', NULL, NULL)");
      } else if (row.sql !== want) {
        throw new RegistryDbError(
          `Registry database "${path}": table ${name} has an unexpected schema: ${row.sql}`,
        );
      }
    }
    sql.exec(FREE_BLOCKS_INDEX);
    sql.exec("COMMIT");
  } catch (e) {
    sql.exec("ROLLBACK");
    throw e;
  }
}
