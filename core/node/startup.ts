// Start-up of the node in the reference order (PROTOCOL.md §7.1 steps 1-12): identity,
// folders and leftovers, network configuration and renewal, settings, hooks, IPv4 payload,
// servers, the node's address, babeld, then the overlay (own address list, tunnel manager,
// peer protocol, configuration updates) and the operator's commands.

import { formatAddressList, parseAddressList, prefixFromCn } from "../addressing.ts";
import { buildBabelConfig, signKeyStatement } from "../babel/config.ts";
import { bytesEqual } from "../crypto.ts";
import { runFile } from "../constants.ts";
import { describeError } from "../errors.ts";
import { clientArgs, type CommonArgs, singleClientArgs } from "../openvpn/args.ts";
import { createOwnAddresses, ipFamily, lookupOwnCountries, upnpUse } from "./addresses.ts";
import { type BabelChange, babelInput, babelTunnelParams, startingSignKey } from "./babel.ts";
import { runUp, startDaemons } from "./commands.ts";
import { handleHook, type HookTargets, serverExited } from "./hooks.ts";
import { ipv4State, networkRoute, nodeAddress } from "./kernel_state.ts";
import { applyConfigChange, type ConfigTarget, NetconfUpdates } from "./netconfig.ts";
import { nodePeerProtocol } from "./peering.ts";
import { claimRunDir } from "./pids.ts";
import {
  checkStop,
  ensureDh,
  fetchNetworkConfig,
  renewIdentity,
  syncNetworkConfig,
  unlessStopped,
} from "./registry_sync.ts";
import {
  leftoverScope,
  loadNodeIdentity,
  type NodeRuntime,
  startOpenVpn,
  sync,
  track,
} from "./runtime.ts";
import { commonOpenVpnArgs, runsServers, startServers } from "./servers.ts";
import { effectiveSettings, explicitAddresses, nodeEnvironment } from "./settings.ts";
import { controlAnswer } from "./control.ts";
import { supervise } from "./supervisor.ts";
import { clientMode } from "./tunnels/client_mode.ts";
import { TunnelManager } from "./tunnels/manager.ts";
import { createUpnpForwarding } from "../upnp/forwarding.ts";
import { recordStore } from "../upnp/record.ts";

/** Longest single timer wait (setTimeout's limit is 2^31 − 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Renewal attempts in one start-up (each replaces a file and re-checks). */
const MAX_RENEWAL_ROUNDS = 3;

/** Brings the node up; throws (StopRequested once asked to stop) when it cannot. */
export async function startUp(rt: NodeRuntime): Promise<void> {
  const o = rt.options;
  const p = rt.parts;
  const log = rt.log;
  const stop = rt.end.signal;

  // 1. Identity.
  let identity = rt.identity = loadNodeIdentity(rt);
  if (identity.expired) {
    log.warn(
      `Certificate ${o.cert} expired on ${identity.cert.notAfter.toISOString()}; ` +
        "asking the registry for a new one",
    );
  }

  // 2. Folders, stale processes, cache, what a killed predecessor left in the kernel.
  await p.files.mkdir(o.state, 0o700); // cache.db holds the Babel keys
  await p.files.mkdir(o.log);
  await p.files.mkdir(o.run, 0o700);
  rt.record = await claimRunDir(o.run, p.files, p.host, p.clock, log);
  if (p.serveControl) {
    rt.control = await p.serveControl(
      runFile(o.run, "control"),
      (req, signal) => controlAnswer(rt, req, signal),
    );
  }
  checkStop(stop);
  const cache = rt.cache = p.openCache(`${o.state}/cache.db`);
  const left = await p.kernel.clearLeftovers(leftoverScope(rt));
  if (left.length) {
    log.warn(`Removed ${left.length} leftover(s) of a previous run: ${left.join(", ")}`);
  }
  checkStop(stop);

  // 3. Network configuration, then certificate and CA renewal.
  rt.registry = p.registry(identity);
  let params = await syncNetworkConfig(sync(rt), identity);
  for (let round = 0;; round++) {
    const crl = effectiveSettings(o, params, identity, true).crl;
    const r = await renewIdentity(sync(rt), p.files, identity, crl);
    rt.nextRenewal = r.nextRenewalMs;
    if (!r.renewed || round >= MAX_RENEWAL_ROUNDS) break;
    identity = rt.identity = loadNodeIdentity(rt);
    rt.registry = p.registry(identity);
  }
  armRenewal(rt);
  params = cache.config();

  // 4-5. Settings, source routing, own address list.
  const sourceRouting = await p.kernel.hasSourceRouting();
  const s = rt.settings = effectiveSettings(o, params, identity, sourceRouting);
  for (const w of s.warnings) log.warn(w);
  if (!sourceRouting) log.warn("No IPv6 source routing in this kernel: udp6/tcp6 disabled");
  const explicit = explicitAddresses(o.ip, s.servers);
  if (explicit.length) cache.setOwnAddress(formatAddressList(explicit));
  checkStop(stop);

  // 6. Environment of --up/--daemon; OpenVPN's hooks come back over a socket.
  const env = nodeEnvironment(identity, o.mainInterface);
  const hookSocket = runFile(o.run, "hookSocket");
  rt.hookServer = await p.openvpn.serveHooks(
    hookSocket,
    (ev) => handleHook(ev, hooks(rt)),
  );
  const hook = await p.openvpn.writeHookScript(runFile(o.run, "hookScript"), hookSocket);
  const common = commonOpenVpnArgs(o, s, hook, p.host.path);

  // 7. The single client of --client mode (the tunnel manager starts with the overlay, once
  // babeld runs: it answers the peer protocol in every mode, §7.1 step 7).
  if (s.clientMode) {
    const remotes = s.clientMode;
    rt.clientMode = clientMode({
      remotes,
      start: (iface) => startOpenVpn(rt, iface, singleClientArgs(common, remotes, iface)),
      clock: p.clock,
      log,
    });
  }
  const clientTunnels = !s.clientMode && s.clientCount > 0;

  // 8. IPv4 payload.
  if (s.ipv4) {
    await rt.kernel.set("ipv4", ipv4State(s.ipv4, o.mainInterface, clientTunnels));
    log.info(`IPv4 payload: ${s.ipv4.address}/${s.ipv4.plen} in ${s.ipv4.network}`);
  }
  checkStop(stop);

  // 9. OpenVPN servers (DH from the registry when --dh is absent), the --client mode tap.
  const servers = runsServers(s);
  if (s.servers.length && !servers) log.warn("max_clients is 0: running no OpenVPN server");
  const taps = [
    ...(servers ? s.servers.map((x) => x.iface) : []),
    ...(rt.clientMode ? [rt.clientMode.iface] : []),
  ];
  if (taps.length) await rt.kernel.set("servers", { taps });
  if (servers) {
    const dh = o.dh ?? `${o.state}/dh.pem`;
    if (!o.dh) await ensureDh(sync(rt), p.files, dh);
    await startServers({
      settings: s,
      common,
      dh,
      start: (iface, args) => startOpenVpn(rt, iface, args),
      onExit: (iface) => serverExited(iface, hooks(rt)),
      clock: p.clock,
      log,
      checkStop: () => checkStop(stop),
    }, rt.servers);
  }
  checkStop(stop);
  startUpnp(rt);

  // 10. Node address, then the network's unreachable route.
  const address = nodeAddress(identity, o.mainInterface);
  await rt.kernel.set("node", { addresses: [address] });
  if (o.mainInterface === "lo") await p.kernel.removeLoopbackLinkLocalRoute();
  await rt.kernel.set("node", { addresses: [address], routes: [networkRoute(identity)] });
  checkStop(stop);

  // 11. babeld, supervised, and the node's one local-interface client; then the overlay.
  // Built again at each (re)start, with the settings and the sign key then in force.
  const signing = startingSignKey(s, p.clock.now());
  rt.babelSignKey = signing.key;
  const babelConfig = () =>
    buildBabelConfig(
      babelInput(o, { ...rt.settings!, hmacSign: rt.babelSignKey }, identity, taps, o.interface),
    );
  rt.babeld = supervise({
    name: "babeld",
    start: () => p.babel.start(babelConfig()),
    clock: p.clock,
    log,
    onStarted: (proc) => track(rt, proc, "babeld"),
  });
  await rt.babeld.start();
  checkStop(stop);
  rt.babel = p.babel.client(babelConfig().paths.socket);
  await unlessStopped(rt.babel.waitConnected(), stop);
  if (signing.switchAtMs !== null) {
    log.info("Babel key rotation under way: babeld signs with the previous key until the switch");
    await applyBabelChange(rt, { kind: "rekey", key: s.hmacSign!, atMs: signing.switchAtMs });
  }
  await startOverlay(rt, common);
  await rt.clientMode?.start();
  checkStop(stop);

  // 12. --up, then --daemon commands.
  if (o.up !== undefined) await runUp(p.shell, o.up, env, stop, log);
  for (const d of startDaemons(p.shell, o.daemon, env, stop, log)) {
    rt.daemons.push(d);
    track(rt, d, "sh");
  }
}

/** What hook events act on. */
function hooks(rt: NodeRuntime): HookTargets {
  const id = rt.identity;
  const s = rt.settings;
  return {
    admission: () => ({
      ourCn: id && s ? id.cn : null,
      crl: s?.crl ?? new Set(),
      clientMode: Boolean(s?.clientMode),
    }),
    served: rt.served,
    serverProtocol: (iface) => s?.servers.find((x) => x.iface === iface)?.proto ?? "",
    manager: rt.manager,
    clientMode: rt.clientMode,
    clock: rt.parts.clock,
    log: rt.log,
  };
}

/**
 * The overlay, once babeld runs: the own address list, the tunnel manager, the peer protocol
 * on UDP 326 and the network configuration updates.
 */
async function startOverlay(rt: NodeRuntime, common: CommonArgs): Promise<void> {
  const p = rt.parts;
  const o = rt.options;
  const log = rt.log;
  const id = rt.identity!;
  const cache = rt.cache!;
  const babel = rt.babel!;
  const stop = rt.end.signal;
  let local: string[] = [];
  try {
    local = await p.kernel.localAddresses();
  } catch (e) {
    log.warn(`Cannot list the machine's addresses: ${describeError(e)}`);
  }
  const s = rt.settings!;
  const own = rt.own = createOwnAddresses({
    ips: o.ip,
    servers: s.servers,
    network: id.network,
    cached: cache.ownAddress(),
    local,
    country: o.country,
    withCountry: s.sameCountry.length > 0,
  });
  cache.setOwnAddress(own.text());
  log.info(`Our address list: ${own.text() || "(empty: not reachable from outside)"}`);
  // The overlay does not wait for the gateway: the mapped address joins the list when known.
  void rt.upnp?.started.then((r) => {
    if (stop.aborted || r.kind !== "mapped") return;
    own.setMapped(r.addresses);
    cache.setOwnAddress(own.text());
    log.info(`Our address list, mapped by the UPnP gateway: ${own.text()}`);
  });
  const updates = new NetconfUpdates({
    clock: p.clock,
    log,
    fetch: () => fetchNetworkConfig(sync(rt), id),
    apply: (changed) => applyConfigChange(changed, configTarget(rt)),
    isRegistryNode: () => rt.settings!.registryPrefix === id.prefix,
    validUntil: () => rt.settings!.validUntil,
  });
  const manager = rt.manager = new TunnelManager({
    network: id.network,
    prefix: id.prefix,
    clock: p.clock,
    log,
    random: p.random,
    settings: () => {
      const now = rt.settings!;
      return { ...now, clientCount: now.clientMode ? 0 : now.clientCount };
    },
    neighbours: o.neighbour.map(prefixFromCn),
    babel,
    peers: {
      sendTo: (peer, code, payload) => rt.protocol?.sendTo(peer, code, payload) ?? false,
      probe: (peer) => rt.protocol?.probe(peer) ?? false,
    },
    cache,
    host: {
      startClient: (iface, remote, peerCn) =>
        startOpenVpn(rt, iface, clientArgs(common, { iface, remote, peerCn })),
      kernel: (state) => rt.kernel.set("tunnels", state),
    },
    bootstrap: () => rt.registry!.getBootstrapPeer(),
    addresses: {
      ...own,
      // A server saw us elsewhere than the gateway says: UPnP looks again (§7.10).
      learn: (ip) => {
        if (rt.upnp && ipFamily(ip) === 4) {
          if (!own.list().some((x) => x.ip === ip)) rt.upnp.forwarding.refresh();
          return false;
        }
        return own.learn(ip);
      },
    },
    remoteGateways: o.remoteGateway,
    served: rt.served,
    babelParams: () => babelTunnelParams(rt.settings!),
    onOwnAddressChange: (text) => cache.setOwnAddress(text),
    onModel: (model) => {
      updates.check(manager.registryReachable());
      // Gossip also at every dump (§7.7): a neighbour without a session only got a hello0
      // when the version changed; it gets the version once the session is up.
      rt.protocol?.gossipVersion(model.neighbours.keys());
    },
  });
  const protocol = rt.protocol = nodePeerProtocol({
    identity: id,
    settings: () => rt.settings!,
    version: cache.version(),
    // Peers of our own networks also get our private addresses (addresses.ts).
    addressList: (prefix) => {
      const known = prefix === null ? null : cache.knownAddress(prefix);
      return own.text(known === null ? null : parseAddressList(known));
    },
    manager,
    onNewerVersion: () => updates.newVersion(),
    send: (host, port, bytes) => rt.socket?.send(host, port, bytes),
    clock: p.clock,
    log,
  });
  rt.socket = p.peerSocket(
    (host, port, bytes) => protocol.receive(host, port, bytes),
    (e) => log.warn(`Peer protocol socket: ${describeError(e)}`),
  );
  rt.loops.push(manager.run(stop), updates.run(stop));
  if (s.sameCountry.length && !o.country) {
    rt.loops.push(
      lookupOwnCountries(own, (ip) => rt.registry!.getCountry(ip), log).then((changed) => {
        if (changed) cache.setOwnAddress(own.text());
      }),
    );
  }
  log.info(
    s.clientMode
      ? "Overlay started in --client mode: peer protocol and configuration updates only"
      : `Overlay started: ${s.clientCount} client tunnels wanted, refresh every ` +
        `${s.tunnelRefreshS} s`,
  );
}

/** What a stored network configuration change acts on (netconfig.ts). */
function configTarget(rt: NodeRuntime): ConfigTarget {
  const o = rt.options;
  const id = rt.identity!;
  const stop = rt.end.signal;
  return {
    settle: () =>
      rt.settings = effectiveSettings(
        o,
        rt.cache!.config(),
        id,
        rt.settings!.sourceRouting,
      ),
    announce: () => {
      const version = rt.cache!.version();
      if (!rt.protocol || !version) return;
      rt.protocol.setVersion(version);
      rt.protocol.gossipVersion(rt.manager!.neighbourPrefixes());
    },
    forgetRevoked: (crl) => rt.protocol?.dropRevoked((serial) => crl.has(serial)) ?? [],
    revocationView: (forgotten) => ({
      ownSerial: id.cert.serial,
      tunnels: rt.manager!.clients.list(),
      served: rt.served.entries(),
      forgotten,
    }),
    closeTunnels: (prefixes, reason) => rt.manager!.closeTunnels(prefixes, reason),
    restart: (reason) => rt.restart(reason),
    restartLater: (reason, delayS) =>
      void rt.parts.clock.sleep(delayS * 1000, stop).then(() => {
        if (!stop.aborted) rt.restart(reason);
      }),
    current: () => rt.settings!,
    babel: (change) => applyBabelChange(rt, change),
    clock: rt.parts.clock,
    overridden: new Set([
      ...(o.clientCount !== undefined ? ["client_count"] : []),
      ...(o.maxClients !== undefined ? ["max_clients"] : []),
    ]),
    log: rt.log,
  };
}

/** Restarts the node when the certificate or the CA is due (§7.8). */
function armRenewal(rt: NodeRuntime): void {
  const at = rt.nextRenewal;
  if (at === null) return;
  const clock = rt.parts.clock;
  const signal = rt.end.signal;
  (async () => {
    while (!signal.aborted && clock.now() < at) {
      await clock.sleep(Math.min(MAX_TIMER_MS, at - clock.now()), signal);
    }
    if (!signal.aborted) rt.restart("certificate or CA renewal is due");
  })();
}

/**
 * UPnP port forwarding of the IPv4 servers (§7.10), when `--ip` asks for it or gives no IPv4
 * address; it searches the gateway while babeld starts; the overlay does not wait for it.
 */
function startUpnp(rt: NodeRuntime): void {
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

/**
 * Applies a change of Babel parameters (babel.ts babelChange): babeld restarts with the new
 * settings, or, in a key rotation, the sign key is replaced in place at the switch time every
 * node shares, so that neighbours never disagree for longer than the clocks do.
 */
async function applyBabelChange(rt: NodeRuntime, change: BabelChange): Promise<void> {
  const log = rt.log;
  if (change.kind === "none") return;
  if (change.kind === "restart") {
    rt.babelSignKey = rt.settings!.hmacSign;
    await rt.babeld?.restart(change.reason);
    return;
  }
  const stop = rt.end.signal;
  const waitMs = change.atMs - rt.parts.clock.now();
  if (waitMs > 0) {
    log.info(
      `New Babel key: babeld switches to it in ${Math.round(waitMs / 1000)} s, with the network`,
    );
    // Configuration updates go on meanwhile.
    void rt.parts.clock.sleep(waitMs, stop)
      .then(() => stop.aborted ? undefined : switchSignKey(rt))
      .catch((e) => log.error(`Cannot switch to the new Babel key: ${describeError(e)}`));
    return;
  }
  await switchSignKey(rt);
}

/** Replaces babeld's sign key in place with the one in force (a later one if it moved on). */
async function switchSignKey(rt: NodeRuntime): Promise<void> {
  const log = rt.log;
  const key = rt.settings!.hmacSign;
  if (!key || (rt.babelSignKey && bytesEqual(rt.babelSignKey, key))) return;
  try {
    const r = await rt.babel!.command(signKeyStatement(key));
    if (r.status !== "ok") throw new Error(`babeld answered "${r.status}"`);
    rt.babelSignKey = key;
    log.info("babeld signs with the new Babel key now (key rotation)");
  } catch (e) {
    // The command holds the key: say why without it, then restart babeld with the key.
    const why = e instanceof Error && e.name === "BabelCommandError" ? "refused" : describeError(e);
    log.warn(`babeld did not take the new Babel key in place (${why}); restarting it with it`);
    rt.babelSignKey = key;
    await rt.babeld?.restart("new Babel key");
  }
}
