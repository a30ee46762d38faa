import assert from "node:assert/strict";
import { memoryLogger } from "../../core/log.ts";
import {
  BOOTSTRAP_REOFFER_S,
  BootstrapCandidates,
  collectTopology,
  collectVersions,
  type DatagramSocket,
  decodeRelay,
  encodeRelay,
  Relay,
} from "../../core/registry/relay.ts";
import { waitFor } from "../helpers/wait.ts";

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
    await waitFor(() => sock.sent.length >= 2, { what: "both version queries sent" });
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

Deno.test("relay answers from anywhere but the local node's peer port are ignored and logged", async () => {
  const sock = fakeSocket();
  const log = memoryLogger(3);
  const relay = new Relay(sock, log, { port: 4326, timeoutMs: 200 });
  const prefix = "0000000000000001";
  const forged = encodeRelay(prefix, 1, new TextEncoder().encode("forged"));
  const from = (hostname: string, port: number) => ({ transport: "udp" as const, hostname, port });
  try {
    const first = relay.query(prefix, 1);
    await waitFor(() => sock.sent.length, { what: "the first query sent" });
    assert.deepEqual(sock.sent[0].to, from("::1", 4326));
    sock.push(forged, from("2001:db8::7", 4326)); // a remote host guessing the port
    sock.push(forged, from("::1", 4327)); // another local program
    assert.equal(await first, null, "a forged answer is not taken");
    const ignored = log.lines.filter((l) => / DEBUG .*ignoring a datagram from/.test(l));
    assert.equal(ignored.length, 2, log.lines.join("\n"));
    assert.match(ignored[0], /\[2001:db8::7\]:4326/);
    assert.match(ignored[1], /\[::1\]:4327/);
    const second = relay.query(prefix, 1);
    await waitFor(() => sock.sent.length >= 2, { what: "the second query sent" });
    sock.push(encodeRelay(prefix, 1, new TextEncoder().encode("real")), from("::1", 4326));
    assert.equal(new TextDecoder().decode((await second)!), "real");
  } finally {
    await relay.close();
  }
});

Deno.test("an asker that comes back is offered another node, the same only when none is left", async () => {
  let now = 0;
  const c = new BootstrapCandidates(
    { reachablePrefixes: () => Promise.resolve(["01", "10", "11"]) },
    () => now,
  );
  // The asker 11 never gets itself; it gets 00 (the registry's node), 01 and 10 once each.
  const first: string[] = [];
  for (let i = 0; i < 3; i++) {
    first.push(await c.next("00", "11"));
    now += 1000;
  }
  assert.deepEqual([...first].sort(), ["00", "01", "10"]);
  // Nothing new is left for it: the one offered longest ago comes round again.
  assert.equal(await c.next("00", "11"), first[0]);
  now += 1000;
  // Another asker is not held back by 11's history.
  assert.notEqual(await c.next("00", "01"), "01");
  // After the re-offer period every node is new to 11 again.
  now += BOOTSTRAP_REOFFER_S * 1000;
  const again = new Set<string>();
  for (let i = 0; i < 3; i++) again.add(await c.next("00", "11"));
  assert.deepEqual([...again].sort(), ["00", "01", "10"]);
});

Deno.test("with only the registry's node reachable it is offered again and again", async () => {
  const c = new BootstrapCandidates({ reachablePrefixes: () => Promise.resolve([]) }, () => 0);
  for (let i = 0; i < 3; i++) assert.equal(await c.next("00", "11"), "00");
});
