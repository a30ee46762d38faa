// The log file of a daemon (node, registry): appended to, reopened on SIGUSR1 after logrotate
// moved it, and never a reason for the daemon to fail: a line that cannot be written (full
// disk, I/O error) is dropped and counted, and the trouble is reported once on stderr.

import { dirname } from "node:path";
import { describeError } from "../core/errors.ts";

/** Where a log file reports its own trouble, and writes lines when it has no file. */
export interface LogFileIo {
  err(text: string): void;
}

/** Options of {@link LogFile}. */
export interface LogFileOptions {
  /** The first open must succeed: the constructor throws instead of falling back to stderr. */
  required?: boolean;
  /** Also copy every line to `io.err` (default: when standard error is a terminal). */
  mirror?: boolean;
  /** Mode of a newly created file (default 0o640). */
  mode?: number;
}

const stderrIo: LogFileIo = {
  err: (text) => void Deno.stderr.writeSync(new TextEncoder().encode(text + "\n")),
};

/**
 * A log file; the path "-" or "" means standard error (`io.err`). Lines go to `io.err` while
 * the file cannot be opened. `write` never throws.
 */
export class LogFile {
  #file: Deno.FsFile | null = null;
  readonly #enc = new TextEncoder();
  readonly #mirror: boolean;
  readonly #mode: number;
  /** Why writes fail, while they do. */
  #failing: string | null = null;
  #droppedNow = 0;
  #dropped = 0;

  constructor(
    readonly path: string,
    readonly io: LogFileIo = stderrIo,
    opts: LogFileOptions = {},
  ) {
    this.#mirror = opts.mirror ?? Deno.stderr.isTerminal();
    this.#mode = opts.mode ?? 0o640;
    if (opts.required && !this.toStderr) this.#open();
    else this.reopen();
  }

  /** Whether lines go to `io.err` by choice (path "-" or ""). */
  get toStderr(): boolean {
    return this.path === "" || this.path === "-";
  }

  /** Whether a line written now also reaches `io.err` (stderr by choice, mirrored, no file). */
  get reachesIo(): boolean {
    return this.toStderr || this.#mirror || this.#file === null;
  }

  /** Lines dropped because the file could not be written, since this object was made. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Closes the file and opens it again, creating it and its folder (SIGUSR1, after logrotate).
   * On failure says so on `io.err`, logs there until the next reopen, and returns false.
   */
  reopen(): boolean {
    this.close();
    if (this.toStderr) return true;
    try {
      this.#open();
      return true;
    } catch (e) {
      this.#say(`${describeError(e)}; logging to standard error`);
      return false;
    }
  }

  /** Writes one line; never throws (a line that cannot be written is dropped and counted). */
  write(line: string): void {
    if (!this.#file) {
      this.#say(line);
      return;
    }
    try {
      writeAllSync(this.#file, this.#enc.encode(line + "\n"));
      if (this.#failing !== null) {
        this.#say(`Log file "${this.path}" written again after ${this.#droppedNow} lines dropped`);
        this.#failing = null;
        this.#droppedNow = 0;
      }
    } catch (e) {
      this.#dropped++;
      this.#droppedNow++;
      if (this.#failing === null) {
        this.#failing = describeError(e);
        this.#say(
          `Cannot write log file "${this.path}": ${this.#failing}; dropping log lines until ` +
            "it can be written again or SIGUSR1 reopens it",
        );
      }
    }
    if (this.#mirror) this.#say(line);
  }

  /** Closes the file; later lines go to `io.err` until `reopen`. */
  close(): void {
    try {
      this.#file?.close();
    } catch {
      // Already closed.
    }
    this.#file = null;
    this.#failing = null;
    this.#droppedNow = 0;
  }

  #open(): void {
    try {
      Deno.mkdirSync(dirname(this.path), { recursive: true });
      this.#file = Deno.openSync(this.path, { append: true, create: true, mode: this.#mode });
    } catch (cause) {
      throw new Error(`Cannot open log file "${this.path}"`, { cause });
    }
  }

  /** io.err that cannot throw (standard error may be closed too). */
  #say(text: string): void {
    try {
      this.io.err(text);
    } catch {
      // Nowhere left to report.
    }
  }
}

function writeAllSync(file: Deno.FsFile, data: Uint8Array): void {
  for (let off = 0; off < data.length;) off += file.writeSync(data.subarray(off));
}
