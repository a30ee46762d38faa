// Teardown of the node (PROTOCOL.md §7.1): stops every child (babeld last), removes every
// kernel change it made and what babeld left, then the run folder. Runs after a stop, a
// restart request or a failed start-up, whatever start-up had brought up.

import { runFile } from "../constants.ts";
import { describeError } from "../errors.ts";
import { leftoverScope, type NodeRuntime } from "./runtime.ts";

/** Implementation: how long teardown waits for the overlay's loops to notice the stop. */
const LOOPS_STOP_WAIT_MS = 5000;

/** Undoes what start-up brought up; logs what it cannot undo and goes on. */
export async function tearDown(rt: NodeRuntime): Promise<void> {
  const log = rt.log;
  const p = rt.parts;
  rt.end.abort(); // the overlay's loops stop (start-up may have failed on its own)
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      log.error(`While stopping: cannot ${what}: ${describeError(e)}`);
    }
  };
  for (const d of rt.daemons.splice(0)) {
    await attempt("stop a --daemon command", () => d.stop());
  }
  if (rt.manager) await attempt("stop the tunnels", () => rt.manager!.stop());
  if (rt.clientMode) await attempt("stop the --client tunnel", () => rt.clientMode!.stop());
  await Promise.all(rt.servers.map((s) => attempt(`stop ${s.name}`, () => s.stop())));
  await Promise.race([Promise.allSettled(rt.loops), p.clock.sleep(LOOPS_STOP_WAIT_MS)]);
  if (rt.own && rt.cache) rt.cache.setOwnAddress(rt.own.text());
  if (rt.socket) await attempt("close the peer socket", () => rt.socket!.close());
  if (rt.babel) await attempt("close the babeld client", () => rt.babel!.close());
  if (rt.babeld) await attempt("stop babeld", () => rt.babeld!.stop());
  if (rt.hookServer) await attempt("close the hook socket", () => rt.hookServer!.close());
  if (rt.upnp) await attempt("remove the UPnP mappings", () => rt.upnp!.forwarding.stop());
  await attempt("remove addresses, routes and taps", () => rt.kernel.clear());
  if (rt.identity) {
    await attempt(
      "remove what babeld left",
      () => p.kernel.clearLeftovers(leftoverScope(rt)),
    );
  }
  if (rt.control) await attempt("close the control socket", () => rt.control!.close());
  const left = p.kernel.owned().length;
  const mapped = await p.files.exists(runFile(rt.options.run, "upnpRecord")).catch(() => false);
  if (rt.record && (left || mapped)) {
    log.warn(
      `Keeping ${rt.options.run}: ` +
        (left ? `its kernel journal lists ${left} change(s) that could not be undone` : "") +
        (left && mapped ? ", and " : "") +
        (mapped ? "UPnP mappings could not all be removed" : "") +
        "; the next start removes them",
    );
  } else if (rt.record) {
    await attempt(`remove ${rt.options.run}`, () => p.files.remove(rt.options.run));
  }
  if (rt.cache) {
    const keep = rt.settings?.clientCount ?? 0;
    const cache = rt.cache;
    rt.cache = null;
    await attempt("shrink and close the cache", () => {
      cache.shrink(keep);
      cache.close();
      return Promise.resolve();
    });
  }
  log.info("Node stopped; every address, route, tap and process it added is gone");
}
