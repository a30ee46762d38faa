// Runs inside a lab namespace for tests/netns/upnp_test.ts (a process sees the network of
// its own namespace only):
//
//   deno run -A upnp_probe.ts forward RUN_DIR 'SERVERS_JSON'
//     UPnP forwarding of the platform client and the core logic, with the record in
//     RUN_DIR/upnp.json, and an echo server on each server's port (TCP and UDP). Prints one
//     JSON line {"result", "status"} once started; on SIGTERM removes the mappings, prints
//     {"stopped": true} and exits. Log lines go to stderr.
//   deno run -A upnp_probe.ts send tcp|udp HOST PORT TEXT
//     Sends TEXT and prints the echo (exit 1 without one within 5 s).

import { createLogger } from "../../core/log.ts";
import { systemClock } from "../../core/clock.ts";
import { runFile } from "../../core/constants.ts";
import { createUpnpForwarding, type UpnpServer } from "../../core/upnp/forwarding.ts";
import { recordStore } from "../../core/upnp/record.ts";
import { createPortMapper } from "../../platform/upnp.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function forward(runDir: string, servers: UpnpServer[]): Promise<void> {
  const echoes = servers.filter((s) => s.proto === "udp" || s.proto === "tcp").map(echo);
  const files = {
    readText: (p: string) =>
      Deno.readTextFile(p).catch((e) =>
        e instanceof Deno.errors.NotFound ? null : Promise.reject(e)
      ),
    writeText: (p: string, t: string) => Deno.writeTextFile(p, t),
    remove: (p: string) =>
      Deno.remove(p).catch((e) =>
        e instanceof Deno.errors.NotFound ? undefined : Promise.reject(e)
      ),
  };
  const fwd = createUpnpForwarding({
    mapper: createPortMapper(),
    store: recordStore(files, runFile(runDir, "upnpRecord")),
    clock: systemClock,
    log: createLogger(3, (l) => console.error(l)),
    description: "re6st test",
  });
  const result = await fwd.start(servers);
  console.log(JSON.stringify({ result, status: fwd.status() }));
  let stop!: () => void;
  const stopping = new Promise<void>((r) => stop = r);
  Deno.addSignalListener("SIGTERM", stop);
  await stopping;
  await fwd.stop();
  for (const e of echoes) e.close();
  console.log(JSON.stringify({ stopped: true, status: fwd.status() }));
  Deno.exit(0);
}

/** Echoes every TCP connection and UDP datagram on the server's port. */
function echo(s: UpnpServer): { close(): void } {
  if (s.proto === "udp") {
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: s.port });
    (async () => {
      for (;;) {
        const [data, from] = await sock.receive();
        await sock.send(data, from);
      }
    })().catch(() => {});
    return sock;
  }
  const l = Deno.listen({ hostname: "0.0.0.0", port: s.port });
  (async () => {
    for await (const c of l) {
      (async () => {
        const buf = new Uint8Array(1024);
        const n = await c.read(buf);
        if (n) await c.write(buf.subarray(0, n));
        c.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return l;
}

async function send(proto: string, hostname: string, port: number, text: string) {
  setTimeout(() => Deno.exit(1), 5000);
  if (proto === "udp") {
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
    await sock.send(encoder.encode(text), { transport: "udp", hostname, port });
    const [data] = await sock.receive();
    console.log(decoder.decode(data));
  } else {
    const c = await Deno.connect({ hostname, port });
    await c.write(encoder.encode(text));
    const buf = new Uint8Array(1024);
    const n = await c.read(buf);
    console.log(decoder.decode(buf.subarray(0, n ?? 0)));
  }
  Deno.exit(0);
}

const [cmd, ...args] = Deno.args;
if (cmd === "forward") await forward(args[0], JSON.parse(args[1]));
else if (cmd === "send") await send(args[0], args[1], Number(args[2]), args[3]);
else {
  console.error("usage: upnp_probe.ts forward RUN_DIR SERVERS_JSON | send tcp|udp HOST PORT TEXT");
  Deno.exit(2);
}
