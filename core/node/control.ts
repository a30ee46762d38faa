// The node's control socket requests (docs/status.md): the status document, Babel's route
// toward an address, and a stream of changes for `re6st status --follow`.

import { describeError } from "../errors.ts";
import { type ControlReply, controlStream } from "../status/control.ts";
import { followLines, followState } from "../status/follow.ts";
import { type RouteAnswer, routeTo } from "../status/route.ts";
import type { NodeRuntime } from "./runtime.ts";

/** Babel's path toward `address`, from the node's view of babeld. */
function route(rt: NodeRuntime, address: unknown): RouteAnswer | { error: string } {
  if (typeof address !== "string" || !address.includes(":")) {
    return { error: `"address" must be an IPv6 address, got ${JSON.stringify(address ?? null)}` };
  }
  const id = rt.identity;
  if (!id || !rt.babel) return { error: "the node is still starting: babeld is not running yet" };
  try {
    return routeTo(address, {
      snapshot: rt.babel.view(),
      network: id.network,
      prefix: id.prefix,
      tunnels: rt.status().tunnels,
    });
  } catch (e) {
    return { error: `cannot look up a route to ${JSON.stringify(address)}: ${describeError(e)}` };
  }
}

/** Answers one control socket request; `signal` aborts when the client goes away. */
export function controlAnswer(
  rt: NodeRuntime,
  request: Record<string, unknown>,
  signal: AbortSignal,
): ControlReply {
  switch (request.request) {
    case "status":
      return rt.status();
    case "route":
      return route(rt, request.address);
    case "follow":
      return controlStream(followLines({
        state: () => {
          const id = rt.identity;
          const babel = id && rt.babel ? { snapshot: rt.babel.view(), network: id.network } : null;
          return followState(rt.status(), babel);
        },
        clock: rt.parts.clock,
        nodeEnd: rt.end.signal,
      }, signal));
    default:
      return { error: `unknown request ${JSON.stringify(request.request ?? null)}` };
  }
}
