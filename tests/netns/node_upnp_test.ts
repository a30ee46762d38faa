// A node behind a home router (PROTOCOL.md §7.10): Debian's miniupnpd runs on a NAT router,
// the node behind it (no --ip) maps its TCP server there and advertises the router's address;
// a node outside opens a tunnel to it through the mapping and traffic flows; the status shows
// the mapping, and it is gone from the router once the node stops.
import assert from "node:assert/strict";
import type { StatusDocument } from "../../core/status/document.ts";
import { selfArgv } from "../../platform/self.ts";
import { createLab, isRoot } from "./lab.ts";
import { dnatRules, startMiniupnpd } from "./miniupnpd.ts";
import {
  enroll,
  nodeIp,
  nodeLog,
  PORT,
  type RunningNode,
  startNode,
  stopCleanly,
} from "./node_lab.ts";

/** The outside world (miniupnpd needs a public-looking WAN address) and the home LAN. */
const WAN = { router: "11.42.0.254", reg: "11.42.0.1", out: "11.42.0.3" };
const LAN = { router: "10.77.0.1", home: "10.77.0.2" };

Deno.test({
  name: "a node behind a UPnP router maps its server, a node outside tunnels to it, the " +
    "mapping goes at stop",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "re6st-upnp-node-" });
    const lab = await createLab("nodeupnp");
    const nodes: RunningNode[] = [];
    try {
      const { config, certs, keys } = await enroll(dir, { count: 3, registryIp: WAN.reg });
      const ca = await Deno.readTextFile(config.ca);
      for (const h of ["router", "reg", "home", "out"]) await lab.addHost(h);
      await lab.segment("wan", ["router", "reg", "out"], {
        v4: [`${WAN.router}/24`, `${WAN.reg}/24`, `${WAN.out}/24`],
      });
      await lab.link("home", "router", {
        v4: [`${LAN.home}/24`, `${LAN.router}/24`],
        ifA: "eth0",
        ifB: "lan",
      });
      await lab.route("home", "default", LAN.router);
      // The router's interfaces are "wan" (the segment's name) and "lan", as miniupnpd expects.
      await startMiniupnpd(lab, "router", dir);

      lab.spawn("reg", [
        ...selfArgv(),
        "registry",
        ...["--port", String(PORT), "--ipv4-bind", WAN.reg, "--ipv6-bind", ""],
        ...["--db", config.db!, "--ca", config.ca, "--key", config.key],
        ...["--anonymous-prefix-length", "16", "--logfile", config.logfile!],
        ...["--run", config.run!, "--hello", "2", "--client-count", "2"],
      ], { log: `${dir}/registry.stdout` });
      await lab.waitFor(async () => {
        const r = await lab.exec("reg", ["ss", "-Hltn", `sport = :${PORT}`]);
        return r.stdout.includes(String(PORT));
      }, { what: "the registry listening", timeoutMs: 20_000 });
      const registry = `http://${WAN.reg}:${PORT}/`;
      const node = (i: number) => ({ ca, cert: certs[i], key: keys[i], registry });
      // The registry's own node; the home node (no --ip: UPnP) keeps one client tunnel, to
      // the registry node, so that the tunnel between home and out is opened by out.
      nodes.push(await startNode(lab, "reg", dir, node(0), ["--ip", WAN.reg]));
      nodes.push(await startNode(lab, "home", dir, node(1), ["--client-count", "1"]));
      nodes.push(await startNode(lab, "out", dir, node(2), ["--ip", WAN.out]));
      const [, home, out] = nodes;
      const status = async (n: RunningNode): Promise<StatusDocument | null> => {
        const r = await lab.exec(n.side, [
          ...selfArgv(),
          "status",
          "--json",
          "--run",
          `${n.dir}/run`,
        ]);
        return r.code === 0 ? JSON.parse(r.stdout) : null;
      };

      // The mapping, in the home node's status and on the router.
      const upnp = await lab.waitFor(async () => {
        const u = (await status(home))?.upnp;
        return u?.state === "mapped" ? u : null;
      }, { what: "the home node's UPnP mapping", timeoutMs: 60_000 });
      assert.equal(upnp.externalIp, WAN.router);
      assert.deepEqual(upnp.mappings.map((m) => `${m.protocol} ${m.externalPort}`), ["tcp 1194"]);
      assert.deepEqual(await dnatRules(lab, "router"), [`tcp 1194 ${LAN.home}:1194`]);

      // The outside node opens a client tunnel to the home node, through the router.
      home.ip = await lab.waitFor(() => nodeIp(lab, "home"), { what: "home's address" });
      const tunnel = await lab.waitFor(async () => {
        const doc = await status(out);
        const cn = (await status(home))?.identity.cn;
        return doc?.tunnels.find((t) =>
          t.direction === "client" && t.peer === cn && t.established
        ) ?? null;
      }, { what: "a tunnel from out to home", timeoutMs: 120_000, intervalMs: 1000 });
      assert.equal(tunnel.remote, `${WAN.router} 1194`, "through the router's mapping");
      await lab.waitFor(() => lab.ping("out", home.ip), {
        what: `out pinging home (${home.ip})`,
        timeoutMs: 60_000,
        intervalMs: 500,
      });

      // At stop, the home node removes its mapping from the router.
      await stopCleanly(lab, home);
      assert.deepEqual(await dnatRules(lab, "router"), [], "no mapping left on the router");
      nodes.splice(nodes.indexOf(home), 1);
    } catch (e) {
      for (const n of nodes) console.error(await nodeLog(n));
      throw e;
    } finally {
      for (const n of nodes) n.child.kill("SIGTERM");
      await Promise.all(nodes.map((n) => n.child.status));
      await lab.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
