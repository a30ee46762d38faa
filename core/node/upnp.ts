// The node's UPnP port forwarding of its IPv4 servers (§7.10, core/upnp/).

import { runFile } from "../constants.ts";
import { createUpnpForwarding } from "../upnp/forwarding.ts";
import { recordStore } from "../upnp/record.ts";
import { upnpUse } from "./addresses.ts";
import type { NodeRuntime } from "./runtime.ts";
import { runsServers } from "./servers.ts";

/**
 * UPnP port forwarding of the IPv4 servers (§7.10), when `--ip` asks for it or gives no IPv4
 * address; it searches the gateway while babeld starts; the overlay does not wait for it.
 */
export function startUpnp(rt: NodeRuntime): void {
  const s = rt.settings!;
  const p = rt.parts;
  const use = upnpUse(rt.options.ip, s.clientMode !== null);
  if (!use || !p.portMapper || !runsServers(s)) return;
  const forwarding = createUpnpForwarding({
    mapper: p.portMapper(),
    store: recordStore(p.files, runFile(rt.options.run, "upnpRecord")),
    clock: p.clock,
    log: rt.log.child("upnp"),
    description: `re6st ${rt.identity!.cn}`,
    onChange: (entries) => {
      rt.own?.setMapped(entries.length ? entries : null);
      if (rt.own) rt.cache?.setOwnAddress(rt.own.text());
    },
  });
  rt.upnp = { forwarding, started: forwarding.start(s.servers) };
}
