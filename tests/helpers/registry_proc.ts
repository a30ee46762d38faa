// Runs a registry in its own process for crash and signal tests:
// `deno run -A tests/helpers/registry_proc.ts '<RegistryConfig JSON>'`.

import { runRegistryUntilSignal } from "../../cmd/registry_daemon.ts";

const config = JSON.parse(Deno.args[0]);
Deno.exit(
  await runRegistryUntilSignal(config, { err: (t) => console.error(t) }, {
    openRelaySocket: () => null,
  }),
);
