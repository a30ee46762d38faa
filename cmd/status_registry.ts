import type { StatusOptions } from "../core/options/status.ts";
import { RegistryClient, RegistryError } from "../core/registry/client.ts";
import { networkView, renderDot, renderNetwork } from "../core/status/network.ts";
import type { Io } from "./io.ts";

/** `re6st status --registry URL`: the network as the registry sees it. */
export async function registryStatus(opts: StatusOptions, io: Io): Promise<number> {
  const client = new RegistryClient(opts.registry!, { timeoutMs: opts.timeout * 1000 });
  try {
    const [versions, topology] = await Promise.all([client.versions(), client.topology()]);
    const view = networkView(client.url, versions, topology);
    if (opts.dot) io.out(renderDot(view));
    else if (opts.json) io.out(JSON.stringify(view, null, 2));
    else io.out(renderNetwork(view));
    return 0;
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    io.err(`re6st status: ${e.message}`);
    return e.status === 403 ? 4 : 1;
  }
}
