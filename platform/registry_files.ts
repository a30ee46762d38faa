// The registry's files: the database folder and file, the group commit of its WAL, and the
// token mailer chosen from --mailhost (an mbox file, or an SMTP host).

import { dirname } from "node:path";
import type { Logger } from "../core/log.ts";
import { type Mailer, mboxMailer, smtpMailer } from "../core/registry/mail.ts";
import type { ResolvedRegistryConfig } from "../core/registry/config.ts";
import type { DurableSync } from "../core/registry/service.ts";

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

/** The token mailer of --mailhost: an mbox file (absolute path or existing file) or SMTP. */
export function registryMailer(c: ResolvedRegistryConfig, log: Logger): Mailer | null {
  if (!c.mailhost) return null;
  let isFile = c.mailhost.startsWith("/");
  if (!isFile) {
    try {
      isFile = Deno.statSync(c.mailhost).isFile;
    } catch {
      // not a file: an SMTP host
    }
  }
  if (isFile) {
    log.info(`Token mails are appended to mbox "${c.mailhost}"`);
    return mboxMailer(c.mailhost, (path, text) => Deno.writeTextFile(path, text, { append: true }));
  }
  return smtpMailer({
    mailhost: c.mailhost,
    starttls: c.smtpStarttls,
    user: c.smtpUser,
    password: c.smtpPwd,
  });
}
