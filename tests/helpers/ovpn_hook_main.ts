// Entry point for tests that need OpenVPN to run `re6st ovpn-hook` before main.ts dispatches
// it: behaves like `main.ts ovpn-hook ...` for that one subcommand.
import { processIo } from "../../cmd/io.ts";
import { run } from "../../cmd/ovpn_hook.ts";

const [sub, ...rest] = Deno.args;
if (sub !== "ovpn-hook") {
  console.error(`ovpn_hook_main.ts: expected "ovpn-hook", got ${JSON.stringify(sub)}`);
  Deno.exit(2);
}
Deno.exit(await run(rest, processIo()));
