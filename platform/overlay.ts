/**
 * The machine-facing parts of the overlay (core/node/overlay.ts): the UDP 326 socket, its own
 * babeld local-interface connection, a registry client, `nft` commands and the machine's
 * addresses, all in the runner's network namespace.
 */
import { createBabelClient } from "../core/babel/local.ts";
import type { Logger } from "../core/log.ts";
import { machineAddresses } from "../core/node/addresses.ts";
import type { OverlayParts } from "../core/node/overlay.ts";
import type { NodeOptions } from "../core/options/node.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { unixConnector } from "./babel_socket.ts";
import type { Runner } from "./runner.ts";
import { openUdpSocket } from "./udp.ts";

/** The real overlay parts of a node running with `opts`. */
export function realOverlayParts(opts: NodeOptions, runner: Runner, log: Logger): OverlayParts {
  return {
    openPeerSocket: (onDatagram, onError) => openUdpSocket({ onDatagram, onError }),
    babelClient: (socket) =>
      createBabelClient({
        connect: unixConnector(socket),
        where: socket,
        log: log.child("overlay babel"),
      }),
    registry: (ctx) =>
      new RegistryClient(opts.registry, {
        // A bootstrap or fetch must not hold the tunnel manager (or a stop) for 60 s.
        timeoutMs: 20_000,
        identity: {
          prefix: ctx.identity.prefix,
          key: ctx.identity.key,
          ca: ctx.identity.ca.publicKey,
        },
      }),
    async nft(args, stdin) {
      await runner.run(["nft", ...args], stdin === undefined ? {} : { stdin });
    },
    async localAddresses() {
      const r = await runner.run(["ip", "-j", "addr", "show"]);
      return machineAddresses(r.stdout);
    },
  };
}
