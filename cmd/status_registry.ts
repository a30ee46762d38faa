import type { StatusOptions } from "../core/options/status.ts";
import { RegistryClient, RegistryError } from "../core/registry/client.ts";
import { networkView, renderDot, renderNetwork, routesProblem } from "../core/status/network.ts";
import type { Io } from "./io.ts";

/** `re6st status --registry URL`: the network as the registry sees it. */
export async function registryStatus(opts: StatusOptions, io: Io): Promise<number> {
  const client = new RegistryClient(opts.registry!, { timeoutMs: opts.timeout * 1000 });
  try {
    const [versions, topology, health] = await Promise.all([
      client.versions(),
      client.topology(),
      client.health(),
    ]);
    const view = networkView(client.url, versions, topology, health?.babel ?? null);
    if (opts.dot) io.out(renderDot(view));
    else if (opts.json) io.out(JSON.stringify(view, null, 2));
    else io.out(renderNetwork(view));
    const problem = routesProblem(view);
    if (problem && (opts.dot || opts.json)) io.err(`re6st status: ${problem}`);
    // A registry blind to its node's routes strands newcomers: unhealthy, like a node.
    return view.routes?.reachable === false ? 1 : 0;
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    io.err(`re6st status: ${e.message}`);
    return e.status === 403 ? 4 : 1;
  }
}
