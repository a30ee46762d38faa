// What a simulated network counts, and the logger of its nodes: silent, but counting (and
// keeping the first few) errors and warnings, which a healthy run has none of.

import type { Logger } from "../../core/log.ts";

/** Counters of one simulated network. */
export interface WorldCounters {
  ticks: number;
  /** Ticks skipped because they could change nothing. */
  skipped: number;
  /** hello0 messages (first contact with a peer). */
  hello0: number;
  /** getBootstrapPeer calls. */
  bootstrapAsks: number;
  /** OpenVPN clients started, and refused. */
  attempts: number;
  refused: number;
  /** Working tunnels closed by their client (retired, duplicate). */
  closed: number;
  /** Error and warning lines of the managers (first few kept). */
  errors: number;
  warnings: number;
  messages: string[];
}

/** Counters at zero. */
export function newCounters(): WorldCounters {
  return {
    ticks: 0,
    skipped: 0,
    hello0: 0,
    bootstrapAsks: 0,
    attempts: 0,
    refused: 0,
    closed: 0,
    errors: 0,
    warnings: 0,
    messages: [],
  };
}

/** A logger that writes nothing and counts errors and warnings into `c`. */
export function countingLogger(c: WorldCounters): Logger {
  const keep = (m: string) => {
    if (c.messages.length < 8 && !c.messages.includes(m)) c.messages.push(m);
  };
  const quiet = () => {};
  const log: Logger = {
    error: (m) => (c.errors++, keep(`ERROR ${m}`)),
    warn: (m) => (c.warnings++, keep(`WARNING ${m}`)),
    info: quiet,
    debug: quiet,
    trace: quiet,
    child: () => log,
  };
  return log;
}
