// The one way tests wait: for a condition, with a name for what never happened. Deadlines
// only bound a wait that failed; no test asserts how long anything took.

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** What is awaited, for the error message "timed out waiting for <what>". */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/** Polls `fn` until it returns a truthy value; fails with "timed out waiting for <what>". */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: WaitOptions,
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out waiting for ${opts.what} (${timeoutMs} ms)`, {
        cause: lastError,
      });
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, deadline - Date.now())));
  }
}

/**
 * Lets pending promise chains run, with no time passing on a manual clock, until `cond` holds;
 * fails with "never happened: <what>".
 */
export async function settled(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 0));
  }
  throw new Error(`never happened: ${what}`);
}
