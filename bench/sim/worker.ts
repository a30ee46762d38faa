// A worker running simulation trials for bench/simulate.ts: one TrialOptions in, one
// TrialResult out.
/// <reference lib="deno.worker" />

import { runTrial, type TrialOptions } from "./trial.ts";

self.onmessage = async (e: MessageEvent<TrialOptions>) => {
  try {
    self.postMessage({ result: await runTrial(e.data) });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
};
