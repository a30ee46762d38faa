// Debian's miniupnpd (nftables build) on a router of a lab (/work/shared/LAB-NOTES.md): its
// nftables chains with a masquerading NAT, its configuration (LAN interface `lan`, WAN `wan`,
// LAN 10.77.0.0/24) and the DNAT rules it makes.
import assert from "node:assert/strict";
import type { Lab } from "./lab.ts";

/** miniupnpd's chains, all in one inet table (LAB-NOTES.md), NAT behind the WAN side. */
const NFT = [
  "table inet filter {",
  "chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }",
  "chain miniupnpd { }",
  "chain prerouting_miniupnpd { }",
  "chain postrouting_miniupnpd { }",
  "chain prerouting { type nat hook prerouting priority -100; policy accept; " +
  "jump prerouting_miniupnpd; }",
  "chain postrouting { type nat hook postrouting priority 100; policy accept; " +
  'jump postrouting_miniupnpd; oifname "wan" masquerade; }',
  "}",
  "",
].join("\n");

const MINIUPNPD_CONF = [
  "ext_ifname=wan",
  "listening_ip=lan",
  "enable_upnp=yes",
  "enable_natpmp=no",
  "secure_mode=yes",
  "system_uptime=yes",
  "allow 1024-65535 10.77.0.0/24 1024-65535",
  "deny 0-65535 0.0.0.0/0 0-65535",
  "upnp_table_name=filter",
  "upnp_nat_table_name=filter",
  "upnp_forward_chain=miniupnpd",
  "upnp_nat_chain=prerouting_miniupnpd",
  "upnp_nat_postrouting_chain=postrouting_miniupnpd",
  "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b",
  "",
].join("\n");

/**
 * Sets up the NAT chains in `router` and runs miniupnpd there until the lab is cleaned up; its
 * files go to `dir`. Resolves once it listens.
 */
export async function startMiniupnpd(lab: Lab, router: string, dir: string): Promise<void> {
  await lab.host(router).runner.run(["nft", "-f", "-"], { stdin: NFT });
  await Deno.writeTextFile(`${dir}/miniupnpd.conf`, MINIUPNPD_CONF);
  const log = `${dir}/miniupnpd.log`;
  lab.spawn(router, [
    "miniupnpd",
    "-d",
    "-f",
    `${dir}/miniupnpd.conf`,
    "-P",
    `${dir}/miniupnpd.pid`,
  ], {
    log,
  });
  await lab.waitFor(
    async () => (await Deno.readTextFile(log).catch(() => "")).includes("HTTP listening"),
    { what: `miniupnpd listening in ${router} (${log})` },
  );
}

/** The rules miniupnpd added to its DNAT chain: `<proto> <external port> <to>` each. */
export async function dnatRules(lab: Lab, router: string): Promise<string[]> {
  const r = await lab.exec(router, [
    "nft",
    "list",
    "chain",
    "inet",
    "filter",
    "prerouting_miniupnpd",
  ]);
  assert.equal(r.code, 0, r.stderr);
  return [...r.stdout.matchAll(/@nh,72,8 0x(6|11) th dport (\d+) dnat ip to (\S+)/g)]
    .map((m) => `${m[1] === "6" ? "tcp" : "udp"} ${m[2]} ${m[3]}`).sort();
}
