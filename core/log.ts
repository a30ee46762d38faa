/** A logger: one line per call, filtered by verbosity. */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  trace(msg: string): void;
  /** A logger whose lines start with `prefix: `. */
  child(prefix: string): Logger;
}

/** Creates a logger writing formatted lines through `write` up to `verbose` (0..4). */
export function createLogger(
  verbose: number,
  write: (line: string) => void,
  now: () => Date = () => new Date(),
  prefix = "",
): Logger {
  const emit = (level: number, tag: string, msg: string) => {
    // Errors are always shown, even at verbosity 0.
    if (level > 0 && level > verbose) return;
    const stamp = now().toISOString().replace("T", " ").slice(0, 19);
    write(`${stamp} ${tag} ${prefix}${msg}`);
  };
  return {
    error: (m) => emit(0, "ERROR", m),
    warn: (m) => emit(1, "WARNING", m),
    info: (m) => emit(2, "INFO", m),
    debug: (m) => emit(3, "DEBUG", m),
    trace: (m) => emit(4, "TRACE", m),
    child: (p) => createLogger(verbose, write, now, `${prefix}${p}: `),
  };
}

/** A logger that keeps its lines in memory, for tests. */
export function memoryLogger(verbose = 4): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger(verbose, (l) => lines.push(l)), { lines });
}
