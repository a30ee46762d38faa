// Real stock babeld in two namespaces, configured by core/babel/config.ts, observed through
// core/babel/local.ts over platform/babel_socket.ts, run by platform/babeld.ts.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type BabelConfigInput, buildBabelConfig } from "../../core/babel/config.ts";
import {
  type BabelClient,
  type BabelClientEvent,
  createBabelClient,
} from "../../core/babel/local.ts";
import { deriveModel } from "../../core/babel/model.ts";
import { BABEL_DEFAULT } from "../../core/constants.ts";
import { memoryLogger } from "../../core/log.ts";
import { unixConnector } from "../../platform/babel_socket.ts";
import { type Babeld, startBabeld } from "../../platform/babeld.ts";
import { createLab, isRoot, type Lab, waitFor } from "./lab.ts";

const NETWORK = "001000000000000100001101101110000000000001000010"; // 2001:db8:42::/48
const PREFIX = { a: "0000000000000001", b: "0000000000000010" } as const;
const IP = { a: "2001:db8:42:1::1", b: "2001:db8:42:2::1" } as const;
const KEY = Uint8Array.from({ length: 16 }, (_, i) => i);
const OTHER_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x80 + i);
/** Short hello interval (babeld accepts fractions of a second) to keep the test fast. */
const HELLO_S = 0.5;
type Side = "a" | "b";

/** Babel config of one side: node IP on lo, veth taps as tunnels, short hellos. */
function configFor(
  side: Side,
  dir: string,
  taps: string[],
  key: Uint8Array,
  over: Partial<BabelConfigInput> = {},
) {
  const input: BabelConfigInput = {
    network: NETWORK,
    prefix: PREFIX[side],
    helloS: HELLO_S,
    babelDefault: BABEL_DEFAULT,
    hmacSign: key,
    gateway: false,
    tunnelInterfaces: taps,
    interfaces: [],
    extraArgs: [],
    paths: {
      config: join(dir, "babeld.conf"),
      socket: join(dir, "babeld.sock"),
      state: join(dir, "babeld.state"),
      log: join(dir, "babeld.log"),
    },
    ...over,
  };
  return buildBabelConfig(input);
}

/** Waits until `pred` holds (polled every 100 ms, with a deadline). */
function until(what: string, pred: () => boolean, ms = 15_000) {
  return waitFor(pred, { what, timeoutMs: ms, intervalMs: 100 });
}

/** Model of one side's current view. */
function model(client: BabelClient) {
  return deriveModel(client.view(), NETWORK);
}

/** True when `client` has `other` as identified neighbour with a refmetric-0 route to it. */
function identifies(client: BabelClient, other: Side, iface?: string): boolean {
  const n = model(client).neighbours.get(PREFIX[other]);
  const r = n?.routes.get(PREFIX[other]);
  return !!r && r.refmetric === 0 && (iface === undefined || r.iface === iface);
}

/** Records client events and waits for the next one of a type. */
function events(client: BabelClient) {
  const seen: BabelClientEvent[] = [];
  const off = client.subscribe((e) => {
    if (e.type !== "update") seen.push(e);
  });
  const next = async (type: "connected" | "disconnected", what: string) => {
    const e = await waitFor(() => {
      const i = seen.findIndex((e) => e.type === type);
      return i >= 0 ? seen.splice(i, 1)[0] : null;
    }, { what, timeoutMs: 15_000, intervalMs: 20 });
    return e;
  };
  return { seen, next, off };
}

/** Connects over TCP from one node IP to the other; returns the source the server saw. */
async function tcpSource(lab: Lab, from: Side, to: Side): Promise<string> {
  const deno = Deno.execPath();
  const server = lab.host(to).runner.spawn([
    deno,
    "eval",
    `const l = Deno.listen({ hostname: "${IP[to]}", port: 7326 });
     console.log("ready");
     const t = setTimeout(() => Deno.exit(3), 5000);
     const c = await l.accept();
     console.log(c.remoteAddr.hostname);
     c.close(); l.close(); clearTimeout(t);`,
  ], { stdout: "piped" });
  const lines = server.stdout!.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  try {
    while (!out.includes("ready\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`TCP server in ${to} ended early: ${out}`);
      out += value;
    }
    const client = await lab.exec(from, [
      deno,
      "eval",
      `const c = await Deno.connect({ hostname: "${IP[to]}", port: 7326 }); c.close();`,
    ], { timeoutMs: 10_000 });
    assert.equal(client.code, 0, `TCP client in ${from} failed: ${client.stderr}`);
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    return out.split("\n")[1];
  } finally {
    await lines.cancel().catch(() => {});
    await server.stop(1000);
  }
}

Deno.test({
  name: "two stock babelds with the generated config route between node IPs and through a " +
    "gateway, authenticate with HMAC keys and survive restarts",
  ignore: !isRoot,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const lab = await createLab("babel");
    const dirs: Record<Side, string> = {
      a: await Deno.makeTempDir({ prefix: "r6-babel-a-" }),
      b: await Deno.makeTempDir({ prefix: "r6-babel-b-" }),
    };
    const procs: Partial<Record<Side, Babeld>> = {};
    const clients: BabelClient[] = [];
    const logs = { a: memoryLogger(), b: memoryLogger() };
    try {
      for (const side of ["a", "b"] as const) {
        await lab.addHost(side);
        await Deno.chmod(dirs[side], 0o700);
        const r = lab.host(side).runner;
        await r.run(["ip", "-6", "addr", "add", `${IP[side]}/64`, "dev", "lo"]);
        await r.run(["ip", "-6", "route", "add", "unreachable", "2001:db8:42::/48"]);
      }
      const link = await lab.link("a", "b");
      const taps = { a: [link.a.iface], b: [link.b.iface] };
      const start = async (side: Side, key: Uint8Array, over: Partial<BabelConfigInput> = {}) => {
        procs[side] = await startBabeld({
          runner: lab.host(side).runner,
          config: configFor(side, dirs[side], taps[side], key, over),
          log: logs[side],
        });
        return procs[side]!;
      };
      // b is a gateway: it has a kernel default route and announces it from the network.
      const rb = lab.host("b").runner;
      await rb.run(["ip", "link", "add", "up0", "up", "type", "veth", "peer", "up1"]);
      await rb.run(["ip", "link", "set", "up1", "up"]);
      // Not "proto boot" (the default of ip route): babeld does not redistribute those (§8.3).
      await rb.run(["ip", "-6", "route", "add", "default", "dev", "up0", "proto", "static"]);
      await start("a", KEY);
      await start("b", KEY, { gateway: true });
      const cfgA = configFor("a", dirs.a, taps.a, KEY);
      assert.equal((await Deno.stat(cfgA.paths.config)).mode! & 0o777, 0o600);

      const connect = (side: Side) =>
        createBabelClient({
          connect: unixConnector(join(dirs[side], "babeld.sock")),
          where: `babeld ${side}`,
          log: logs[side],
          retryMinMs: 50,
          retryMaxMs: 200,
        });
      const ca = connect("a"), cb = connect("b");
      clients.push(ca, cb);
      const evB = events(cb);
      await ca.waitConnected(5000);
      const first = await evB.next("connected", "b's client to connect");
      assert.ok(first.type === "connected" && !first.reconnect);
      assert.match(ca.info!.version, /^babeld-1\.12/);

      // Same key on both sides: each identifies the other and routes to its prefix.
      await until("a to identify b", () => identifies(ca, "b"));
      await until("b to identify a", () => identifies(cb, "a"));
      const snapA = await ca.dump();
      const mA = deriveModel(snapA, NETWORK, PREFIX.b);
      assert.equal(mA.registryReachable, true);
      assert.deepEqual([...mA.distantNodes], []);
      assert.ok(snapA.xroutes.some((x) => x.prefix === "2001:db8:42:1::" && x.plen === 64));
      const kernel = await lab.exec("a", ["ip", "-6", "route", "show", "2001:db8:42:2::/64"]);
      assert.match(kernel.stdout, /proto babel src 2001:db8:42:1::1/);
      // The gateway's default route is source-specific: only traffic from the network uses it.
      await until("a to install the default route of gateway b", () => {
        const r = model(ca).neighbours.get(PREFIX.b)?.routes.get(null);
        return r?.prefix === "::" && r.plen === 0 && r.from === "2001:db8:42::" &&
          r.fromPlen === 48;
      });
      const routesA = await lab.exec("a", ["ip", "-6", "route", "show"]);
      assert.match(
        routesA.stdout,
        /^default from 2001:db8:42::\/48 via fe80::\S+ dev to-b proto babel/m,
      );
      assert.equal(await tcpSource(lab, "a", "b"), IP.a);
      assert.equal(await tcpSource(lab, "b", "a"), IP.b);

      // A second link added at run time with the tunnel parameters forms an authenticated
      // neighbour; flushing it retracts the routes through it.
      const link2 = await lab.link("a", "b");
      await ca.addInterface(link2.a.iface, cfgA.tunnelParams);
      await cb.addInterface(link2.b.iface, cfgA.tunnelParams);
      await until(
        "a to see b on the run-time interface",
        () => ca.view().routes.some((r) => r.iface === link2.a.iface && r.refmetric === 0),
      );
      assert.equal(await ca.flushInterface(link2.a.iface), true);
      const afterFlush = await ca.dump();
      assert.ok(!afterFlush.interfaces.some((i) => i.name === link2.a.iface));
      assert.ok(!afterFlush.routes.some((r) => r.iface === link2.a.iface));
      assert.equal(await ca.flushInterface(link2.a.iface), false);

      // SIGTERM: b retracts its routes before exiting; both clients notice.
      const onLink = (c: BabelClient, iface: string) =>
        c.view().neighbours.some((n) => n.iface === iface);
      const stopped = await procs.b!.stop();
      assert.equal(stopped.requested, true);
      await evB.next("disconnected", "b's client to report babeld gone");
      await until("a to drop the route to b", () => !identifies(ca, "b"), 5000);
      await until("a to forget neighbour b", () => !onLink(ca, link.a.iface), 10_000);

      // Different keys: b restarts, its client reconnects, but a drops every packet of b, so
      // not even a neighbour entry appears (with equal keys one appears at the first hello,
      // checked below with the same window).
      await start("b", OTHER_KEY);
      const back = await evB.next("connected", "b's client to reconnect");
      assert.ok(back.type === "connected" && back.reconnect);
      const window = 4 * HELLO_S * 1000;
      await new Promise((r) => setTimeout(r, window)); // absence needs an observation window
      assert.equal(onLink(ca, link.a.iface), false, "a accepted packets signed with another key");
      assert.equal(onLink(cb, link.b.iface), false, "b accepted packets signed with another key");
      assert.equal(identifies(ca, "b") || identifies(cb, "a"), false);

      // SIGKILL: the wrapper reports the unexpected exit and removes the stale socket.
      Deno.kill(procs.b!.pid, "SIGKILL");
      const killed = await procs.b!.exited;
      assert.equal(killed.requested, false);
      assert.equal(killed.signal, "SIGKILL");
      await evB.next("disconnected", "b's client to report the killed babeld");
      assert.ok(logs.b.lines.some((l) => /babeld \(pid \d+\) exited unexpectedly/.test(l)));
      await assert.rejects(Deno.stat(join(dirs.b, "babeld.sock")), Deno.errors.NotFound);

      // Same key again: b comes back, a neighbour appears within the window, routes form.
      // This time b also announces a plain default route, like a pre-protocol-8 gateway.
      await start("b", KEY, { extraArgs: ["-C", "redistribute ip ::/0 eq 0"] });
      await evB.next("connected", "b's client to reconnect after the kill");
      await until("a to hear b again", () => onLink(ca, link.a.iface), window);
      await until("a to identify b again", () => identifies(ca, "b"));
      await until("b to identify a again", () => identifies(cb, "a"));
      // A normal node refuses the plain default (stock babeld would make it the machine's
      // default route, §8.4.4); it came in the same update as b's prefix.
      assert.ok(cb.view().xroutes.some((x) => x.plen === 0 && x.fromPlen === 0));
      assert.ok(!(await ca.dump()).routes.some((r) => r.plen === 0 && r.fromPlen === 0));
      const defaultA = await lab.exec("a", ["ip", "-6", "route", "show", "default"]);
      assert.doesNotMatch(defaultA.stdout, /^default via/m);
      evB.off();
    } finally {
      for (const c of clients) await c.close();
      for (const p of Object.values(procs)) await p?.stop(2000);
      await lab.cleanup();
      for (const d of Object.values(dirs)) await Deno.remove(d, { recursive: true });
    }
  },
});
