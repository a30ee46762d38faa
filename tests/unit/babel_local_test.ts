import assert from "node:assert/strict";
import {
  type BabelClient,
  type BabelClientEvent,
  BabelCommandError,
  type BabelConnection,
  BabelUnavailableError,
  createBabelClient,
} from "../../core/babel/local.ts";
import { memoryLogger } from "../../core/log.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One client connection of the fake babeld. */
class FakeConn implements BabelConnection {
  #queue: (Uint8Array | null)[] = [];
  #waiting: ((c: Uint8Array | null) => void) | null = null;
  #buf = "";
  closed = false;
  monitor = false;
  greeted = false;
  constructor(readonly server: FakeBabeld) {}

  push(chunk: Uint8Array | null) {
    if (this.closed) return;
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = null;
      w(chunk);
    } else this.#queue.push(chunk);
  }
  /** Sends lines, cut into two chunks in the middle to exercise partial lines. */
  send(lines: string[]) {
    const bytes = enc.encode(lines.map((l) => l + "\n").join(""));
    const cut = Math.floor(bytes.length / 2);
    this.push(bytes.slice(0, cut));
    this.push(bytes.slice(cut));
  }
  read(): Promise<Uint8Array | null> {
    if (this.closed) return Promise.resolve(null);
    if (this.#queue.length) return Promise.resolve(this.#queue.shift()!);
    return new Promise((r) => this.#waiting = r);
  }
  write(data: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error("closed"));
    this.#buf += dec.decode(data);
    let nl;
    while ((nl = this.#buf.indexOf("\n")) >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      this.server.handle(this, line);
    }
    return Promise.resolve();
  }
  close() {
    if (this.closed) return;
    this.push(null);
    this.closed = true;
    this.server.conns.delete(this);
  }
}

/** A scripted babeld: objects by key ("route 1"), and the answers of the local interface. */
class FakeBabeld {
  objects = new Map<string, string>();
  conns = new Set<FakeConn>();
  received: string[] = [];
  up = true;
  /** When false, new connections get no banner (babeld busy or something else listening). */
  banner = true;
  connects = 0;

  connect = (): Promise<BabelConnection> => {
    this.connects++;
    if (!this.up) return Promise.reject(new Error("ECONNREFUSED"));
    const c = new FakeConn(this);
    this.conns.add(c);
    if (this.banner) {
      c.greeted = true;
      c.send([
        "BABEL 1.0",
        "version babeld-1.12.1",
        "host fake",
        "my-id 02:00:00:00:00:00:00:01",
        "ok",
      ]);
    }
    return Promise.resolve(c);
  };

  #notify(line: string) {
    for (const c of this.conns) if (c.monitor) c.send([line]);
  }
  set(body: string) {
    const key = body.split(" ").slice(0, 2).join(" ");
    this.#notify(`${this.objects.has(key) ? "change" : "add"} ${body}`);
    this.objects.set(key, body);
  }
  remove(key: string) {
    const body = this.objects.get(key);
    if (!body) return;
    this.objects.delete(key);
    this.#notify(`flush ${body}`);
  }
  raw(line: string) {
    for (const c of this.conns) c.send([line]);
  }
  crash() {
    this.up = false;
    this.objects.clear();
    for (const c of [...this.conns]) c.close();
  }
  handle(c: FakeConn, line: string) {
    this.received.push(line);
    if (!c.greeted) return; // like a babeld that has not accepted the connection yet
    const words = line.split(" ");
    const all = () => [...this.objects.values()].map((b) => `add ${b}`);
    if (line === "monitor") {
      c.send([...all(), "ok"]);
      c.monitor = true;
    } else if (line === "dump") c.send([...all(), "ok"]);
    else if (words[0] === "interface" && words.length >= 2) {
      if (!this.objects.has(`interface ${words[1]}`)) this.set(`interface ${words[1]} up false`);
      c.send(["ok"]);
    } else if (words[0] === "flush" && words[1] === "interface") {
      if (this.objects.has(`interface ${words[2]}`)) {
        this.remove(`interface ${words[2]}`);
        c.send(["ok"]);
      } else c.send(["no No such interface"]);
    } else c.send(["bad"]);
  }
}

const ROUTE_1 =
  "route 55aa01 prefix 2001:db8:42:1::/64 from ::/0 installed yes id 84:76:0f:c9:9e:20:96:de metric 96 refmetric 0 via fe80::1 if t1";
const NEIGH_1 =
  "neighbour 55aa02 address fe80::1 if t1 reach ffff ureach 0000 rxcost 96 txcost 96 cost 96";

function fixture() {
  const babeld = new FakeBabeld();
  babeld.set("interface t1 up true ipv6 fe80::2");
  babeld.set(NEIGH_1);
  babeld.set(ROUTE_1);
  return babeld;
}

/** Queues client events; `next` takes the first one matching a predicate, waiting if needed. */
function recorder(client: BabelClient) {
  const events: BabelClientEvent[] = [];
  const waits: { pred: (e: BabelClientEvent) => boolean; resolve(e: BabelClientEvent): void }[] =
    [];
  const unsubscribe = client.subscribe((e) => {
    const w = waits.find((w) => w.pred(e));
    if (!w) {
      events.push(e);
      return;
    }
    waits.splice(waits.indexOf(w), 1);
    w.resolve(e);
  });
  /** Next not yet consumed event matching `pred` (earlier non-matching ones stay queued). */
  const next = (what: string, pred: (e: BabelClientEvent) => boolean, ms = 2000) => {
    const seen = events.find(pred);
    if (seen) {
      events.splice(events.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const w = { pred, resolve: (_: BabelClientEvent) => {} };
    return Promise.race([
      new Promise<BabelClientEvent>((resolve) => (w.resolve = resolve, waits.push(w))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          waits.splice(waits.indexOf(w), 1);
          reject(new Error(`no ${what} event within ${ms} ms`));
        }, ms);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  return { events, next, unsubscribe };
}

function client(babeld: FakeBabeld, extra: { commandTimeoutMs?: number } = {}) {
  const log = memoryLogger();
  const c = createBabelClient({
    connect: babeld.connect,
    where: "fake.sock",
    log,
    retryMinMs: 5,
    retryMaxMs: 20,
    ...extra,
  });
  return { c, log };
}

Deno.test("the client reads the banner and synchronises its view with monitor", async () => {
  const babeld = fixture();
  const { c, log } = client(babeld);
  try {
    await c.waitConnected(2000);
    assert.equal(c.connected, true);
    assert.deepEqual(c.info, {
      version: "babeld-1.12.1",
      host: "fake",
      myId: "02:00:00:00:00:00:00:01",
    });
    const v = c.view();
    assert.deepEqual(v.interfaces, [{ name: "t1", up: true, ipv6: "fe80::2" }]);
    assert.equal(v.neighbours[0].address, "fe80::1");
    assert.equal(v.routes[0].prefix, "2001:db8:42:1::");
    assert.deepEqual(babeld.received, ["monitor"]);
    assert.ok(log.lines.some((l) => l.includes("Connected to babeld-1.12.1 at fake.sock")));
  } finally {
    await c.close();
  }
});

Deno.test("asynchronous add, change and flush lines update the view and are reported", async () => {
  const babeld = fixture();
  const { c } = client(babeld);
  const rec = recorder(c);
  try {
    await c.waitConnected(2000);
    babeld.set(ROUTE_1.replace("metric 96", "metric 65535"));
    const changed = await rec.next(
      "route change",
      (e) => e.type === "update" && e.event.kind === "change",
    );
    assert.ok(changed.type === "update" && changed.event.type === "route");
    assert.equal(c.view().routes[0].metric, 65535);
    babeld.remove("route 55aa01");
    await rec.next("route flush", (e) => e.type === "update" && e.event.kind === "flush");
    assert.equal(c.view().routes.length, 0);
  } finally {
    rec.unsubscribe();
    await c.close();
  }
});

Deno.test("malformed lines are ignored and commands keep working", async () => {
  const babeld = fixture();
  const { c, log } = client(babeld);
  try {
    await c.waitConnected(2000);
    babeld.raw("add route garbage");
    babeld.raw("\u00ff\u0000 nonsense");
    babeld.raw("add neighbour 1 address fe80::9 if t1 reach zz");
    const snap = await c.dump();
    assert.equal(snap.routes.length, 1);
    assert.equal(snap.neighbours.length, 1);
    assert.ok(log.lines.some((l) => l.includes("Ignoring unexpected line")));
  } finally {
    await c.close();
  }
});

Deno.test("dump drops objects that babeld no longer lists", async () => {
  const babeld = fixture();
  const { c } = client(babeld);
  try {
    await c.waitConnected(2000);
    babeld.objects.delete("route 55aa01"); // gone without a flush line
    assert.equal(c.view().routes.length, 1);
    const snap = await c.dump();
    assert.equal(snap.routes.length, 0);
    assert.equal(snap.neighbours.length, 1);
    assert.equal(c.view().routes.length, 0);
  } finally {
    await c.close();
  }
});

Deno.test("interfaces are added and flushed at run time and refusals are errors", async () => {
  const babeld = fixture();
  const { c } = client(babeld);
  try {
    await c.addInterface("re6stnet3", "type tunnel rtt-max 500 key sign");
    assert.ok(babeld.received.includes("interface re6stnet3 type tunnel rtt-max 500 key sign"));
    assert.ok(c.view().interfaces.some((i) => i.name === "re6stnet3"));
    assert.equal(await c.flushInterface("re6stnet3"), true);
    assert.ok(!c.view().interfaces.some((i) => i.name === "re6stnet3"));
    assert.equal(await c.flushInterface("re6stnet3"), false);
    assert.deepEqual(await c.command("redistribute ip ::/0 deny"), { status: "bad" });
    await assert.rejects(() => c.addInterface("bad name", "type tunnel"), /interface name/);
    await assert.rejects(() => c.command("x".repeat(1100)), BabelCommandError);
    await assert.rejects(() => c.command("dump\nquit"), BabelCommandError);
  } finally {
    await c.close();
  }
});

Deno.test("after babeld restarts the client reconnects, says so and re-adds run-time interfaces", async () => {
  const babeld = fixture();
  const { c, log } = client(babeld);
  const rec = recorder(c);
  try {
    await rec.next("connected", (e) => e.type === "connected" && !e.reconnect);
    await c.addInterface("re6stnet1", "type tunnel key sign");
    await c.addInterface("re6stnet2", "type tunnel key sign");
    await c.flushInterface("re6stnet2");
    babeld.crash();
    const down = await rec.next("disconnected", (e) => e.type === "disconnected");
    assert.ok(down.type === "disconnected" && /closed the connection/.test(down.reason));
    assert.equal(c.connected, false);
    await rec.next(
      "failed reconnection",
      (e) => e.type === "disconnected" && /ECONNREFUSED/.test(e.reason),
    );
    babeld.received = [];
    babeld.up = true;
    babeld.set("interface t1 up true ipv6 fe80::2");
    const up = await rec.next("reconnected", (e) => e.type === "connected");
    assert.ok(up.type === "connected" && up.reconnect);
    assert.deepEqual(babeld.received, ["monitor", "interface re6stnet1 type tunnel key sign"]);
    assert.deepEqual(c.view().interfaces.map((i) => i.name).sort(), ["re6stnet1", "t1"]);
    assert.equal(c.view().routes.length, 0, "routes of the previous babeld are gone");
    assert.ok(log.lines.some((l) => l.includes("Lost babeld at fake.sock")));
    assert.ok(log.lines.some((l) => l.includes("Reconnected to babeld-1.12.1")));
  } finally {
    rec.unsubscribe();
    await c.close();
  }
});

Deno.test("while babeld is not there yet the client logs one line, not one per retry", async () => {
  const babeld = fixture();
  babeld.up = false;
  const { c, log } = client(babeld);
  const rec = recorder(c);
  try {
    for (let i = 0; i < 6; i++) {
      await rec.next("failed connection", (e) => e.type === "disconnected");
    }
    const about = () => log.lines.filter((l) => l.includes("fake.sock"));
    assert.equal(about().length, 1, about().join("\n"));
    assert.match(
      about()[0],
      /WARNING No babeld at fake\.sock yet \(cannot connect: ECONNREFUSED\)/,
    );
    babeld.up = true;
    await c.waitConnected(2000);
    assert.equal(about().length, 2);
    assert.match(about()[1], /Connected to babeld-1\.12\.1 at fake\.sock/);
  } finally {
    rec.unsubscribe();
    await c.close();
  }
});

Deno.test("a connection without banner is abandoned after the command timeout and retried", async () => {
  const babeld = fixture();
  babeld.banner = false;
  const { c } = client(babeld, { commandTimeoutMs: 50 });
  const rec = recorder(c);
  try {
    const e = await rec.next("disconnected", (e) => e.type === "disconnected");
    assert.ok(e.type === "disconnected" && /no banner within 50 ms/.test(e.reason));
    babeld.banner = true;
    await c.waitConnected(2000);
    assert.ok(babeld.connects >= 2);
  } finally {
    rec.unsubscribe();
    await c.close();
  }
});

Deno.test("dump fails with BabelUnavailableError while babeld stays unreachable", async () => {
  const babeld = fixture();
  babeld.up = false;
  const { c } = client(babeld);
  try {
    await assert.rejects(() => c.dump(60), BabelUnavailableError);
    assert.equal(c.connected, false);
  } finally {
    await c.close();
  }
  await assert.rejects(() => c.waitConnected(10), /client closed/);
});

Deno.test("closing the client rejects whoever waits for babeld", async () => {
  const babeld = fixture();
  babeld.up = false;
  const { c } = client(babeld);
  const waiting = c.waitConnected(5000);
  await c.close();
  await assert.rejects(() => waiting, /client closed/);
});
