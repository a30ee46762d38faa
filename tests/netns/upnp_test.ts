// UPnP port forwarding against Debian's miniupnpd (nftables build) on a NAT router namespace:
// a host behind it maps a TCP and a UDP port through the platform client and the core logic
// (tests/netns/upnp_probe.ts), a host outside reaches the inside host's echo servers through
// the router's WAN address, stopping removes the nft rules, and a mapping left by a killed
// run is removed at the next start through the record, while another program's stays.
import assert from "node:assert/strict";
import type { UpnpResult, UpnpStatus } from "../../core/upnp/forwarding.ts";
import { runFile } from "../../core/constants.ts";
import { type Child, createLab, isRoot, type Lab } from "./lab.ts";
import { dnatRules, startMiniupnpd } from "./miniupnpd.ts";

const LAN = { router: "10.77.0.1", inside: "10.77.0.2" };
/** miniupnpd refuses a private external address (/work/shared/LAB-NOTES.md): not RFC 1918. */
const WAN = { router: "11.42.0.254", outside: "11.42.0.1" };
const PROBE = new URL("./upnp_probe.ts", import.meta.url).pathname;

interface Probe {
  child: Child;
  log: string;
  /** The n-th JSON line the probe printed, once it has. */
  json<T>(n: number, what: string): Promise<T>;
}

function startProbe(lab: Lab, dir: string, name: string, servers: unknown[]): Probe {
  const log = `${dir}/${name}.log`;
  const child = lab.spawn("inside", [
    Deno.execPath(),
    "run",
    "-A",
    PROBE,
    "forward",
    `${dir}/run`,
    JSON.stringify(servers),
  ], { log });
  return {
    child,
    log,
    json: async <T>(n: number, what: string) => {
      const text = () => Deno.readTextFile(log).catch(() => "");
      const line = await lab.waitFor(async () => {
        return (await text()).split("\n").filter((l) => l.startsWith("{"))[n];
      }, { what, timeoutMs: 20_000 }).catch(async (e) => {
        throw new Error(`${e.message}; the probe wrote:\n${await text()}`);
      });
      return JSON.parse(line) as T;
    },
  };
}

async function echoThrough(lab: Lab, proto: string, port: number, text: string): Promise<string> {
  const r = await lab.exec("outside", [
    Deno.execPath(),
    "run",
    "-A",
    PROBE,
    "send",
    proto,
    WAN.router,
    String(port),
    text,
  ], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `${proto} echo through ${WAN.router}:${port}: ${r.stderr}`);
  return r.stdout.trim();
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test({
  name: "a node behind miniupnpd maps TCP and UDP ports, is reachable through them, removes " +
    "them at stop, and removes at start what a killed run left",
  ignore: !isRoot,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const lab = await createLab("upnp");
    const dir = await Deno.makeTempDir({ prefix: "r6-upnp-" });
    try {
      for (const h of ["router", "inside", "outside"]) await lab.addHost(h);
      await lab.link("inside", "router", {
        v4: [`${LAN.inside}/24`, `${LAN.router}/24`],
        ifA: "eth0",
        ifB: "lan",
      });
      await lab.link("router", "outside", {
        v4: [`${WAN.router}/24`, `${WAN.outside}/24`],
        ifA: "wan",
        ifB: "eth0",
      });
      await lab.route("inside", "default", LAN.router);
      await Deno.mkdir(`${dir}/run`);
      await startMiniupnpd(lab, "router", dir);

      // A run that maps TCP 2000, then is killed: its mapping stays, recorded in the run folder.
      const killed = startProbe(lab, dir, "killed", [{ port: 2000, proto: "tcp" }]);
      const first = await killed.json<{ result: UpnpResult }>(0, "the first run's mapping");
      assert.equal(first.result.kind, "mapped", JSON.stringify(first.result));
      killed.child.kill("SIGKILL");
      await killed.child.status;
      assert.deepEqual(await dnatRules(lab, "router"), [`tcp 2000 ${LAN.inside}:2000`]);
      assert.ok(await exists(runFile(`${dir}/run`, "upnpRecord")), "the record outlives the kill");
      // Another program of the inside host maps a port of its own.
      const other = await lab.exec("inside", [
        "upnpc",
        "-e",
        "another program",
        "-a",
        LAN.inside,
        "3000",
        "3000",
        "TCP",
      ], { timeoutMs: 20_000 });
      assert.equal(other.code, 0, other.stdout + other.stderr);

      // The next run: removes the killed run's mapping (only that one), maps TCP and UDP 1194.
      const node = startProbe(lab, dir, "node", [
        { port: 1194, proto: "tcp" },
        { port: 1194, proto: "udp" },
        { port: 1194, proto: "tcp6" },
      ]);
      const started = await node.json<{ result: UpnpResult; status: UpnpStatus }>(
        0,
        "the second run's mappings",
      );
      assert.deepEqual(started.result, {
        kind: "mapped",
        gateway: started.status.gateway,
        externalIp: WAN.router,
        addresses: [
          { ip: WAN.router, port: 1194, proto: "tcp" },
          { ip: WAN.router, port: 1194, proto: "udp" },
        ],
      });
      assert.match(started.status.gateway!, /^http:\/\/10\.77\.0\.1:\d+\/ctl\/IPConn$/);
      assert.deepEqual(
        started.status.mappings.map((m) => `${m.externalIp}:${m.externalPort}/${m.protocol}`),
        [`${WAN.router}:1194/tcp`, `${WAN.router}:1194/udp`],
      );
      assert.match(
        await Deno.readTextFile(node.log),
        /Removed UPnP mapping 2000\/tcp → 10\.77\.0\.2:2000 left by a previous run/,
      );
      assert.deepEqual(await dnatRules(lab, "router"), [
        `tcp 1194 ${LAN.inside}:1194`,
        `tcp 3000 ${LAN.inside}:3000`,
        `udp 1194 ${LAN.inside}:1194`,
      ]);
      // miniupnpc, the reference's client library, sees our mappings as we described them.
      const listed = await lab.exec("inside", ["upnpc", "-l"], { timeoutMs: 20_000 });
      assert.match(listed.stdout, /TCP\s+1194->10\.77\.0\.2:1194\s+'re6st test'/);
      assert.match(listed.stdout, /UDP\s+1194->10\.77\.0\.2:1194\s+'re6st test'/);

      // From outside, the router's WAN address reaches the inside host.
      assert.equal(await echoThrough(lab, "tcp", 1194, "hello over tcp"), "hello over tcp");
      assert.equal(await echoThrough(lab, "udp", 1194, "hello over udp"), "hello over udp");

      // Stop: our rules and the record go, the other program's mapping stays.
      node.child.kill("SIGTERM");
      const stopped = await node.json<{ stopped: boolean }>(1, "the second run's stop");
      assert.equal(stopped.stopped, true);
      assert.equal((await node.child.status).code, 0);
      assert.deepEqual(await dnatRules(lab, "router"), [`tcp 3000 ${LAN.inside}:3000`]);
      assert.equal(await exists(runFile(`${dir}/run`, "upnpRecord")), false);
    } finally {
      await lab.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "without a gateway the forwarding says client-only after one search",
  ignore: !isRoot,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const lab = await createLab("upnp-none");
    const dir = await Deno.makeTempDir({ prefix: "r6-upnp-" });
    try {
      await lab.addHost("router");
      await lab.addHost("inside");
      await lab.link("inside", "router", { v4: [`${LAN.inside}/24`, `${LAN.router}/24`] });
      await lab.route("inside", "default", LAN.router);
      await Deno.mkdir(`${dir}/run`);
      const probe = startProbe(lab, dir, "alone", [{ port: 1194, proto: "udp" }]);
      const r = await probe.json<{ result: UpnpResult }>(0, "the result without a gateway");
      assert.deepEqual(r.result, {
        kind: "client-only",
        reason: "no UPnP gateway answered within 2000 ms",
      });
      const warnings = (await Deno.readTextFile(probe.log)).split("\n")
        .filter((l) => l.includes("WARNING"));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /No UPnP gateway answered within 2000 ms: no port mapped/);
      probe.child.kill("SIGTERM");
      assert.equal((await probe.child.status).code, 0);
    } finally {
      await lab.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
