// SIGTERM and SIGINT listened to from a daemon's first instant, before its modules load, so a
// stop asked during start-up is never the default "killed by signal".

/** The stop signals of a starting daemon. */
export interface StopSignals {
  /** The first stop signal received, or null. */
  readonly received: string | null;
  /** Called with the first stop signal received (set it when ready to stop). */
  onSignal: ((sig: string) => void) | null;
  /** Stops listening. */
  remove(): void;
}

/** Starts listening to SIGTERM and SIGINT; keeps the first one received. */
export function stopSignals(): StopSignals {
  let received: string | null = null;
  const handlers = (["SIGTERM", "SIGINT"] as const).map((sig): [Deno.Signal, () => void] => [
    sig,
    () => {
      if (received !== null) return;
      received = sig;
      state.onSignal?.(sig);
    },
  ]);
  const state: StopSignals = {
    get received() {
      return received;
    },
    onSignal: null,
    remove() {
      for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
    },
  };
  for (const [sig, fn] of handlers) Deno.addSignalListener(sig, fn);
  return state;
}
