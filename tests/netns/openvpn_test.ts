// Real OpenVPN 2.6 between two namespaces joined by a veth: server and client built by
// core/openvpn/args.ts, hooks through `re6st ovpn-hook` and the hook socket, certificates
// from core/cert.ts. Checks the 2.6 choices documented in core/openvpn/args.ts.
import assert from "node:assert/strict";
import { createCa, issueCertificate, parseCertificate } from "../../core/cert.ts";
import { generateRsaKey, loadPrivateKey } from "../../core/crypto.ts";
import { FFDHE2048_PEM } from "../../core/dh.ts";
import { memoryLogger } from "../../core/log.ts";
import {
  clientArgs,
  type CommonArgs,
  serverArgs,
  serverIface,
  type ServerProto,
  TUN_MTU_UDP4,
} from "../../core/openvpn/args.ts";
import type { HookEvent } from "../../core/openvpn/hooks.ts";
import { startHookServer, writeHookScript } from "../../platform/hook_server.ts";
import { linuxKernelOps } from "../../platform/linux.ts";
import { type OpenVpnProcess, startOpenVpn } from "../../platform/openvpn.ts";
import { createRunner, type Runner } from "../../platform/runner.ts";
import { selfArgv, selfEnv } from "../../platform/self.ts";
import { createLab, isRoot, type Lab } from "./lab.ts";

const NETWORK = "001000000000000100001101101110000000000001000010"; // 2001:db8:42::/48

interface Node {
  cn: string;
  serial: bigint;
  certPem: string;
  keyPem: string;
}

/** A CA and three node certificates (2048-bit: OpenSSL 3 refuses smaller keys), made once. */
let pki: Promise<{ ca: string; srv: Node; cli: Node; rev: Node }> | undefined;
function makePki() {
  pki ??= (async () => {
    const ca = await createCa({ network: NETWORK, notBefore: new Date(Date.now() - 3600_000) });
    const caCert = parseCertificate(ca.certPem);
    const caKey = loadPrivateKey(ca.keyPem);
    const node = async (cn: string, serial: bigint): Promise<Node> => {
      const keyPem = await generateRsaKey(2048);
      const notBefore = new Date(Date.now() - 3600_000);
      const issued = issueCertificate({
        ca: caCert,
        caKey,
        subject: [["serialNumber", String(serial)], ["CN", cn]],
        publicKey: loadPrivateKey(keyPem),
        serial,
        notBefore,
        notAfter: new Date(notBefore.getTime() + 86400_000),
      });
      return { cn, serial, certPem: issued.pem, keyPem };
    };
    const [srv, cli, rev] = await Promise.all([
      node("1/16", 0x1001n),
      node("2/16", 0x1002n),
      node("3/16", 0x1003n),
    ]);
    return { ca: ca.certPem, srv, cli, rev };
  })();
  return pki;
}

/** Writes a node's certificate and key into `dir`; returns their paths. */
async function writeNode(dir: string, name: string, n: Node) {
  await Deno.writeTextFile(`${dir}/${name}.crt`, n.certPem);
  await Deno.writeTextFile(`${dir}/${name}.key`, n.keyPem, { mode: 0o600 });
  return { cert: `${dir}/${name}.crt`, key: `${dir}/${name}.key` };
}

/** The argv OpenVPN's hook script runs: this program from source. */
function hookSelf(): Promise<string[]> {
  return Promise.resolve(selfArgv());
}

/** `p`, or null if it does not settle within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/** True when a network interface of that name exists in the runner's namespace. */
async function linkExists(runner: Runner, iface: string): Promise<boolean> {
  return (await runner.run(["ip", "link", "show", "dev", iface], { ok: "any" })).code === 0;
}

async function linkLine(lab: Lab, host: string, iface: string): Promise<string> {
  return (await lab.exec(host, ["ip", "-o", "link", "show", "dev", iface])).stdout;
}

async function linkLocal(lab: Lab, host: string, iface: string): Promise<string | undefined> {
  const out = (await lab.exec(host, ["ip", "-o", "-6", "addr", "show", "dev", iface])).stdout;
  return /inet6 (fe80::[0-9a-f:]+)\/64/.exec(out)?.[1];
}

async function tunnel(encrypt: boolean, proto: ServerProto) {
  const lab = await createLab(`ovpn-${proto}`);
  const dir = await Deno.makeTempDir({ prefix: "re6st-ovpn-" });
  const procs: OpenVpnProcess[] = [];
  const events: HookEvent[] = [];
  const p = await makePki();
  const socket = `${dir}/ovpn-hook.sock`;
  const hook = `${dir}/ovpn-hook`;
  const revoked = new Set([p.rev.serial]);
  const server = await startHookServer({
    path: socket,
    handler: (ev) => {
      events.push(ev);
      if (ev.type !== "client-connect") return;
      return revoked.has(ev.serial)
        ? { accept: false, reason: `serial ${ev.serial} is revoked` }
        : { accept: true };
    },
  });
  try {
    await writeHookScript(hook, await hookSelf(), socket, selfEnv());
    await Deno.writeTextFile(`${dir}/ca.crt`, p.ca);
    await Deno.writeTextFile(`${dir}/dh.pem`, FFDHE2048_PEM);
    const files = {
      srv: await writeNode(dir, "srv", p.srv),
      cli: await writeNode(dir, "cli", p.cli),
      rev: await writeNode(dir, "rev", p.rev),
    };
    await lab.addHost("srv");
    await lab.addHost("cli");
    const link = await lab.link("srv", "cli", { v4: "10.77.0.0/24" });
    const srvHost = lab.host("srv"), cliHost = lab.host("cli");
    // Taps are made as the node makes them (ip tuntap, platform/linux.ts), in the namespace.
    const cliKernel = linuxKernelOps(cliHost.runner);
    // The encrypted run also carries the IPv4 payload (§1.6): one /24 per node.
    const ipv4 = (x: number) =>
      encrypt ? { ipv4: { address: `10.42.${x}.1`, netmask: "255.255.255.0" } } : {};
    const common = (n: { cert: string; key: string }, x: number): CommonArgs => ({
      ...ipv4(x),
      hook,
      path: PATH,
      encrypt,
      hello: 15,
      ca: `${dir}/ca.crt`,
      cert: n.cert,
      key: n.key,
      extra: ["--verb", "3"],
    });
    const waitEvent = (what: string, pred: (e: HookEvent) => boolean) =>
      lab.waitFor(() => events.find(pred), { what, timeoutMs: 15_000 });

    // Server.
    const sIface = serverIface(proto);
    const sLog = memoryLogger();
    const srv = startOpenVpn(srvHost.runner, {
      name: sIface,
      log: sLog,
      args: serverArgs(common(files.srv, 1), {
        port: 1194,
        proto,
        dh: `${dir}/dh.pem`,
        maxClients: 4,
      }),
    });
    procs.push(srv);
    await waitEvent("the server's up hook", (e) => e.type === "up" && e.dev === sIface);

    // Client on a tap made beforehand, as the tunnel manager does.
    assert.equal(await cliKernel.createTap("re6stnet1"), true);
    const cLog = memoryLogger();
    const cli = startOpenVpn(cliHost.runner, {
      name: "re6stnet1",
      log: cLog,
      args: clientArgs(common(files.cli, 2), {
        iface: "re6stnet1",
        remote: { ip: link.a.v4!, port: 1194, proto },
        peerCn: p.srv.cn,
      }),
    });
    procs.push(cli);

    const cc = await waitEvent("client-connect of 2/16", (e) => e.type === "client-connect");
    assert.equal(cc.type === "client-connect" && cc.commonName, "2/16");
    assert.equal(cc.type === "client-connect" && cc.serial, p.cli.serial);
    assert.equal(cc.type === "client-connect" && cc.trustedIp, link.b.v4);
    assert.equal(cc.dev, sIface);
    const ru = await waitEvent("route-up of the client", (e) => e.type === "route-up");
    assert.deepEqual(
      ru.type === "route-up" && [ru.dev, ru.commonName, ru.serial, ru.externalIp],
      ["re6stnet1", "1/16", p.srv.serial, link.b.v4],
    );
    const up = events.find((e) => e.type === "up" && e.dev === "re6stnet1");
    const srvUp = events.find((e) => e.type === "up" && e.dev === sIface);
    const udp = proto.startsWith("udp");
    // Both ends of a UDP tunnel use the documented tap MTU; TCP keeps OpenVPN's 1500.
    assert.equal(up?.type === "up" && up.mtu, udp ? TUN_MTU_UDP4 : 1500);
    assert.equal(srvUp?.type === "up" && srvUp.mtu, udp ? TUN_MTU_UDP4 : 1500);

    // Taps are up (the up hook did it) and carry link-local IPv6 both ways.
    assert.match(await linkLine(lab, "cli", "re6stnet1"), /[<,]UP[,>]/);
    assert.match(await linkLine(lab, "srv", sIface), /[<,]UP[,>]/);
    if (encrypt) {
      const v4 = async (h: string, dev: string) =>
        (await lab.exec(h, ["ip", "-o", "-4", "addr", "show", "dev", dev])).stdout;
      assert.match(await v4("srv", sIface), /inet 10\.42\.1\.1\/24/);
      assert.match(await v4("cli", "re6stnet1"), /inet 10\.42\.2\.1\/24/);
    }
    const srvLl = await lab.waitFor(() => linkLocal(lab, "srv", sIface), {
      what: "a link-local address on the server tap",
    });
    await lab.waitFor(() => lab.ping("cli", `${srvLl}%re6stnet1`, { timeoutS: 1 }), {
      what: "ping6 over the tunnel",
    });
    if (udp) {
      // A full-size packet with DF fits the 1500-byte path (what --link-mtu no longer does).
      const full = String(TUN_MTU_UDP4 - 48);
      const r = await lab.exec("cli", [
        "ping",
        "-6",
        "-n",
        "-q",
        "-c",
        "1",
        "-W",
        "2",
        "-M",
        "do",
        "-s",
        full,
        `${srvLl}%re6stnet1`,
      ]);
      assert.equal(r.code, 0, `full-size ping failed: ${r.stdout}${r.stderr}`);
    }

    // Cipher: none without 64 MB renegotiation, or a negotiated AEAD cipher.
    await lab.waitFor(() => sLog.lines.some((l) => l.includes("Data Channel: cipher")), {
      what: "the server to report its data channel cipher",
    });
    const dataLine = sLog.lines.find((l) => l.includes("Data Channel: cipher"))!;
    if (encrypt) assert.match(dataLine, /AES-256-GCM|CHACHA20/);
    else assert.match(dataLine, /null-cipher/);
    for (const l of [...sLog.lines, ...cLog.lines]) {
      assert.equal(/reneg-bytes to 64MB|Unrecognized option/.test(l), false, l);
    }

    // A revoked certificate is refused by client-connect; its client gives up.
    assert.equal(await cliKernel.createTap("re6stnet2"), true);
    const bad = startOpenVpn(cliHost.runner, {
      name: "re6stnet2",
      args: clientArgs(common(files.rev, 3), {
        iface: "re6stnet2",
        remote: { ip: link.a.v4!, port: 1194, proto },
        peerCn: p.srv.cn,
      }),
    });
    procs.push(bad);
    const refused = await waitEvent(
      "client-connect of the revoked 3/16",
      (e) => e.type === "client-connect" && e.serial === p.rev.serial,
    );
    assert.equal(refused.dev, sIface);
    const badExit = await within(bad.exited, 20_000);
    assert.notEqual(badExit, null, "the refused client did not exit");
    assert.equal(
      events.some((e) => e.type === "route-up" && e.dev === "re6stnet2"),
      false,
    );

    // Stopping: the server learns a TCP client left; then nothing is left behind.
    await cli.stop();
    if (!udp) {
      await waitEvent(
        "client-disconnect of 2/16",
        (e) => e.type === "client-disconnect" && e.commonName === "2/16",
      );
    }
    await srv.stop();
    for (const t of ["re6stnet1", "re6stnet2"]) assert.equal(await cliKernel.deleteTap(t), true);
    assert.equal(await cliKernel.deleteTap("re6stnet1"), false, "again: nothing to do");
    assert.equal(await linkExists(cliHost.runner, "re6stnet1"), false);
    assert.equal(await linkExists(cliHost.runner, "re6stnet2"), false);
    assert.equal(await linkExists(srvHost.runner, sIface), false);
    for (const h of ["srv", "cli"]) {
      // Asked from outside: a command run inside would list itself.
      const pids = await createRunner().run(["ip", "netns", "pids", lab.host(h).ns]);
      assert.equal(pids.stdout.trim(), "", `processes left in ${h}`);
    }
  } finally {
    await Promise.allSettled(procs.map((x) => x.stop(1000)));
    await server.close();
    await lab.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

const opts = { ignore: !isRoot, sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "an unencrypted UDP tunnel comes up, reports its hooks and refuses a revoked client",
  ...opts,
  fn: () => tunnel(false, "udp"),
});

Deno.test({
  name: "an encrypted TCP tunnel with the IPv4 payload comes up and reports the client leaving",
  ...opts,
  fn: () => tunnel(true, "tcp"),
});
