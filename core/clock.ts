// The one clock of node, registry and peer code: milliseconds since the UNIX epoch, and one
// sleep. Injected everywhere, so tests and simulations advance time instead of sleeping
// (STYLE.md 5).

/** Source of time and timers. */
export interface Clock {
  /** Milliseconds since the UNIX epoch. */
  now(): number;
  /** Resolves after `ms` milliseconds, or early (without error) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: Date.now and setTimeout. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
    });
  },
};

/** A clock for tests: time moves only with {@link ManualClock.advance}. */
export interface ManualClock extends Clock {
  /** Moves time forward, waking every sleeper whose deadline passed, in deadline order. */
  advance(ms: number): Promise<void>;
  /** Number of pending sleeps. */
  pending(): number;
}

/** Creates a manual clock starting at `startMs`. */
export function manualClock(startMs = 1_800_000_000_000): ManualClock {
  let t = startMs;
  const sleepers: { at: number; wake: () => void }[] = [];
  const settle = () => new Promise<void>((r) => setTimeout(r, 0));
  return {
    now: () => t,
    sleep(ms, signal) {
      return new Promise((resolve) => {
        if (signal?.aborted) return resolve();
        const entry = {
          at: t + Math.max(0, ms),
          wake: () => {
            signal?.removeEventListener("abort", abort);
            resolve();
          },
        };
        const abort = () => {
          const i = sleepers.indexOf(entry);
          if (i >= 0) sleepers.splice(i, 1);
          resolve();
        };
        signal?.addEventListener("abort", abort, { once: true });
        sleepers.push(entry);
      });
    },
    async advance(ms) {
      const end = t + ms;
      for (;;) {
        await settle();
        sleepers.sort((a, b) => a.at - b.at);
        const next = sleepers[0];
        if (!next || next.at > end) break;
        sleepers.shift();
        t = Math.max(t, next.at);
        next.wake();
      }
      t = end;
      await settle();
    },
    pending: () => sleepers.length,
  };
}

/** Delays of an exponential back-off: `startMs`, doubling, capped at `maxMs`. */
export function backoffDelays(startMs: number, maxMs: number): () => number {
  let next = startMs;
  return () => {
    const d = next;
    next = Math.min(maxMs, next * 2);
    return d;
  };
}
