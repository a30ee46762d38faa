// An attacker for registry tests: opens COUNT idle TCP connections to 127.0.0.1:PORT from the
// loopback address FROM and never sends a byte. Prints one JSON line each 100 ms:
// {"opened": n, "failed": n, "closedByServer": n} (connections the registry accepted and then
// closed; failed: refused or reset before that). Closes everything and exits when its standard
// input closes.
//
//   deno run -A tests/helpers/registry_flood.ts PORT COUNT FROM

import net from "node:net";

const [port, count] = Deno.args.slice(0, 2).map(Number);
const from = Deno.args[2];
const sockets = new Set<net.Socket>();
let opened = 0, failed = 0, closedByServer = 0;
let stopping = false;

function open(): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: from });
    let connected = false;
    s.on("connect", () => {
      connected = true;
      opened++;
      sockets.add(s);
      resolve();
    });
    s.on("error", () => {});
    s.on("close", () => {
      sockets.delete(s);
      if (stopping) return;
      if (connected) closedByServer++;
      else {
        failed++;
        resolve();
      }
    });
  });
}

const report = setInterval(() => {
  console.log(JSON.stringify({ opened, failed, closedByServer }));
}, 100);

(async () => {
  for (let i = 0; i < count; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, count - i) }, open));
  }
})();

for await (const _ of Deno.stdin.readable) {
  // wait for the end of standard input
}
stopping = true;
clearInterval(report);
for (const s of sockets) s.destroy();
console.log(JSON.stringify({ opened, failed, closedByServer }));
Deno.exit(0);
