// Runs a registry for the node netns tests: `deno run -A node_registry_main.ts '<config JSON>'`
// (a RegistryConfig), inside a test namespace, until SIGTERM.
import { runRegistryUntilSignal } from "../../core/registry/run.ts";

if (import.meta.main) {
  const config = JSON.parse(Deno.args[0]);
  Deno.exit(await runRegistryUntilSignal(config, { err: (t) => console.error(t) }));
}
