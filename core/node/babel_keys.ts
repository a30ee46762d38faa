// Babel key rotation on the running babeld (docs/babel-key-rotation.md): what a change of
// Babel parameters does to babeld, and the in-place switch of its sign key.

import { signKeyStatement } from "../babel/config.ts";
import { bytesEqual } from "../crypto.ts";
import { describeError } from "../errors.ts";
import type { BabelChange } from "./babel.ts";
import type { NodeRuntime } from "./runtime.ts";

/**
 * Applies a change of Babel parameters (babel.ts babelChange): babeld restarts with the new
 * settings, or, in a key rotation, the sign key is replaced in place at the switch time every
 * node shares, so that neighbours never disagree for longer than the clocks do.
 */
export async function applyBabelChange(rt: NodeRuntime, change: BabelChange): Promise<void> {
  const log = rt.log;
  if (change.kind === "none") return;
  if (change.kind === "restart") {
    rt.babelSignKey = rt.settings!.hmacSign;
    await rt.babeld?.restart(change.reason);
    return;
  }
  const stop = rt.end.signal;
  const waitMs = change.atMs - rt.parts.clock.now();
  if (waitMs > 0) {
    log.info(
      `New Babel key: babeld switches to it in ${Math.round(waitMs / 1000)} s, with the network`,
    );
    // Configuration updates go on meanwhile.
    void rt.parts.clock.sleep(waitMs, stop)
      .then(() => stop.aborted ? undefined : switchSignKey(rt))
      .catch((e) => log.error(`Cannot switch to the new Babel key: ${describeError(e)}`));
    return;
  }
  await switchSignKey(rt);
}

/** Replaces babeld's sign key in place with the one in force (a later one if it moved on). */
async function switchSignKey(rt: NodeRuntime): Promise<void> {
  const log = rt.log;
  const key = rt.settings!.hmacSign;
  if (!key || (rt.babelSignKey && bytesEqual(rt.babelSignKey, key))) return;
  try {
    const r = await rt.babel!.command(signKeyStatement(key));
    if (r.status !== "ok") throw new Error(`babeld answered "${r.status}"`);
    rt.babelSignKey = key;
    log.info("babeld signs with the new Babel key now (key rotation)");
  } catch (e) {
    // The command holds the key: say why without it, then restart babeld with the key.
    const why = e instanceof Error && e.name === "BabelCommandError" ? "refused" : describeError(e);
    log.warn(`babeld did not take the new Babel key in place (${why}); restarting it with it`);
    rt.babelSignKey = key;
    await rt.babeld?.restart("new Babel key");
  }
}
