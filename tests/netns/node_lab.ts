// Real nodes in a lab, one helper each: a CA and an enrolled registry database, `re6st node`
// started in a host with its files, its address, logs, processes and what it leaves behind.
import assert from "node:assert/strict";
import { createCa, createCsr } from "../../core/cert.ts";
import { generateRsaKey } from "../../core/crypto.ts";
import { memoryLogger } from "../../core/log.ts";
import type { RegistryConfig } from "../../core/registry/config.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { startRegistry } from "../../cmd/registry_daemon.ts";
import { createRunner } from "../../platform/runner.ts";
import { selfArgv } from "../../platform/self.ts";
import type { Child, Lab } from "./lab.ts";

const NETWORK = "001000000000000100001101101110000000000001000010"; // 2001:db8:42::/48
/** Port of the registry's HTTP listener in these labs. */
export const PORT = 8080;

/**
 * A 2048-bit CA (OpenSSL 3 refuses smaller keys in TLS) and a registry database with `count`
 * nodes (the first one is the registry's own node), for a registry listening on `registryIp`.
 */
export async function enroll(
  dir: string,
  o: { count?: number; registryIp?: string } = {},
): Promise<{ config: RegistryConfig; certs: string[]; keys: string[] }> {
  const ca = await createCa({ network: NETWORK, notBefore: new Date(Date.now() - 3600_000) });
  await Deno.writeTextFile(`${dir}/ca.crt`, ca.certPem);
  await Deno.writeTextFile(`${dir}/ca.key`, ca.keyPem, { mode: 0o600 });
  const config: RegistryConfig = {
    ca: `${dir}/ca.crt`,
    key: `${dir}/ca.key`,
    db: `${dir}/registry.db`,
    port: PORT,
    ipv4Bind: o.registryIp ?? "10.0.0.1",
    ipv6Bind: "",
    anonymousPrefixLength: 16,
    logfile: `${dir}/registry.log`,
    run: `${dir}/registry-run`,
    verbose: 3,
    hello: 2,
  };
  // Enrolled on loopback through the real RPC, then the database moves into a namespace.
  const running = await startRegistry({ ...config, port: 0, ipv4Bind: "127.0.0.1" }, {
    log: memoryLogger(0),
    openRelaySocket: () => null,
  });
  const keys = await Promise.all(
    Array.from({ length: o.count ?? 2 }, () => generateRsaKey(2048)),
  );
  const certs: string[] = [];
  try {
    const client = new RegistryClient(`http://127.0.0.1:${running.port}/`);
    for (const key of keys) {
      const pem = await client.requestCertificate("", createCsr(key, []));
      assert.ok(pem, "requestCertificate gave a certificate");
      certs.push(pem);
    }
  } finally {
    await running.stop();
  }
  return { config, certs, keys };
}

/** A `re6st node` started in a host of a lab. */
export interface RunningNode {
  /** The lab host. */
  side: string;
  child: Child;
  dir: string;
  ip: string;
}

/** Writes a node's files and starts `re6st node` inside its namespace. */
export async function startNode(
  lab: Lab,
  side: string,
  dir: string,
  node: { ca: string; cert: string; key: string; registry: string },
  extra: string[],
): Promise<RunningNode> {
  const { ca, cert, key } = node;
  const d = `${dir}/${side}`;
  await Deno.mkdir(d, { recursive: true });
  await Deno.writeTextFile(`${d}/ca.crt`, ca);
  await Deno.writeTextFile(`${d}/cert.crt`, cert);
  await Deno.writeTextFile(`${d}/cert.key`, key, { mode: 0o600 });
  const argv = [
    ...selfArgv(),
    "node",
    "--registry",
    node.registry,
    "--ca",
    `${d}/ca.crt`,
    "--cert",
    `${d}/cert.crt`,
    "--key",
    `${d}/cert.key`,
    "-s",
    `${d}/state`,
    "-l",
    `${d}/log`,
    "-r",
    `${d}/run`,
    "-v",
    "3",
    ...extra,
  ];
  const child = lab.spawn(side, argv, { log: `${d}/stdout.log` });
  return { side, child, dir: d, ip: "" };
}

/** The node's logs, for a failure message. */
export async function nodeLog(n: RunningNode): Promise<string> {
  const read = (p: string) => Deno.readTextFile(p).catch(() => "");
  const log = (await read(`${n.dir}/log/re6stnet.log`)).split("\n")
    .filter((l) => !l.includes(" DEBUG openvpn: ")).join("\n");
  return `--- ${n.side} re6stnet.log (without OpenVPN's own lines)\n${log}\n` +
    `--- ${n.side} stdout\n${await read(`${n.dir}/stdout.log`)}` +
    `--- ${n.side} babeld.log (tail)\n${(await read(`${n.dir}/log/babeld.log`)).slice(-2000)}`;
}

/** The node IP once the node put it on lo. */
export async function nodeIp(lab: Lab, side: string): Promise<string | null> {
  const r = await lab.exec(side, ["ip", "-6", "-o", "addr", "show", "dev", "lo"]);
  return /inet6 (2001:db8:42:[0-9a-f:]+)\/64/.exec(r.stdout)?.[1] ?? null;
}

/** re6st traces in a namespace: addresses and routes in the network, taps, processes. */
export async function traces(lab: Lab, side: string): Promise<string[]> {
  const out: string[] = [];
  const addr = await lab.exec(side, ["ip", "-6", "-o", "addr", "show"]);
  out.push(...addr.stdout.split("\n").filter((l) => l.includes("2001:db8:42:")));
  const routes = await lab.exec(side, ["ip", "-6", "route", "show", "table", "all"]);
  out.push(...routes.stdout.split("\n").filter((l) => l.includes("2001:db8:42:")));
  const links = await lab.exec(side, ["ip", "-o", "link", "show"]);
  out.push(...links.stdout.split("\n").filter((l) => l.includes("re6stnet")));
  out.push(...(await processes(lab, side)).map((p) => `process ${p.pid} ${p.name}`));
  return out;
}

/** The processes of a host's namespace. */
export async function processes(lab: Lab, side: string): Promise<{ pid: number; name: string }[]> {
  // Listed from outside the namespace, so the listing command itself is not counted.
  const r = await createRunner().run(["ip", "netns", "pids", lab.host(side).ns]);
  const out = [];
  for (const pid of r.stdout.split(/\s+/).filter((p) => p)) {
    const name = await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "?");
    out.push({ pid: Number(pid), name: name.trim() });
  }
  return out;
}

/** Sends SIGTERM, expects exit status 0 and no trace of re6st in the node's namespace. */
export async function stopCleanly(lab: Lab, n: RunningNode): Promise<void> {
  n.child.kill("SIGTERM");
  const s = await n.child.status;
  assert.equal(s.code, 0, `node ${n.side} exit status\n${await nodeLog(n)}`);
  assert.deepEqual(await traces(lab, n.side), [], `re6st traces left in ${n.side}`);
  assert.equal(
    await Deno.stat(`${n.dir}/run`).then(() => true, () => false),
    false,
    `run folder of ${n.side} removed`,
  );
}
