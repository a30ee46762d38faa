import assert from "node:assert/strict";
import { memoryLogger } from "../../core/log.ts";
import {
  collectTopology,
  collectVersions,
  type DatagramSocket,
  decodeRelay,
  encodeRelay,
  Relay,
} from "../../core/registry/relay.ts";

type Addr = { transport: "udp"; hostname: string; port: number };

/** A DatagramSocket whose received datagrams the test pushes, with their source. */
function fakeSocket() {
  const queue: [Uint8Array, Addr][] = [];
  const sent: { data: Uint8Array; to: Addr }[] = [];
  let wake: (() => void) | null = null;
  let closed = false;
  const socket: DatagramSocket & {
    sent: typeof sent;
    push(data: Uint8Array, from: Addr): void;
  } = {
    sent,
    push(data, from) {
      queue.push([data, from]);
      wake?.();
    },
    send(data, to) {
      sent.push({ data, to });
      return Promise.resolve(data.length);
    },
    async receive() {
      while (!queue.length) {
        if (closed) throw new Error("closed");
        await new Promise<void>((r) => wake = r);
      }
      return queue.shift()!;
    },
    close() {
      closed = true;
      wake?.();
    },
  };
  return socket;
}

Deno.test("versions with nobody to ask answers at once instead of waiting the crawl timeout", async () => {
  const log = memoryLogger(3);
  const none = new Relay(null, log);
  const idle = new Relay(fakeSocket(), log);
  try {
    assert.equal(none.timeoutMs, 3000);
    const t0 = performance.now();
    assert.deepEqual(await collectVersions(none, ["0000000000000001"]), {
      "0000000000000001": null,
    });
    assert.deepEqual(await collectVersions(idle, []), {});
    assert.deepEqual(await collectTopology(none, "0000000000000001", log), { "": [] });
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `crawls with nothing sent took ${ms.toFixed(0)} ms`);
  } finally {
    await none.close();
    await idle.close();
  }
});

Deno.test("versions still waits for the nodes it asked", async () => {
  const sock = fakeSocket();
  const relay = new Relay(sock, memoryLogger(3), { timeoutMs: 100 });
  try {
    const pending = collectVersions(relay, ["0000000000000001", "0000000000000010"]);
    while (sock.sent.length < 2) await new Promise((r) => setTimeout(r, 1));
    const m = decodeRelay(sock.sent[0].data)!;
    const node = { transport: "udp" as const, hostname: "::1", port: 326 };
    sock.push(encodeRelay(m.prefix, m.code, new TextEncoder().encode("0.1.0, Linux")), node);
    assert.deepEqual(await pending, {
      "0000000000000001": "0.1.0, Linux",
      "0000000000000010": null,
    });
  } finally {
    await relay.close();
  }
});
