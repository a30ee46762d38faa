import assert from "node:assert/strict";
import { recordingIo } from "../../cmd/io.ts";
import { runFile } from "../../core/constants.ts";
import { STATUS_JSON_SCHEMA, validateSchema } from "../../core/status/document.ts";
import { main } from "../../main.ts";
import { controlStream } from "../../core/status/control.ts";
import type { RouteAnswer } from "../../core/status/route.ts";
import {
  followControl,
  MAX_REQUEST_BYTES,
  queryControl,
  serveControl,
} from "../../platform/control.ts";
import { waitFor } from "../helpers/wait.ts";
import { sampleStatus } from "../helpers/status_sample.ts";

async function rawRequest(path: string, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.endsWith("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

/** A signal that never aborts. */
const NEVER = new AbortController().signal;

async function withNode(
  handler: (req: Record<string, unknown>, signal: AbortSignal) => unknown,
  fn: (run: string, socket: string) => Promise<void>,
) {
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-" });
  const socket = runFile(run, "control");
  const server = await serveControl(socket, handler);
  try {
    await fn(run, socket);
  } finally {
    await server.close();
    Deno.removeSync(run, { recursive: true });
  }
}

const statusHandler = (req: Record<string, unknown>) =>
  req.request === "status" ? sampleStatus() : { error: `unknown request ${req.request}` };

Deno.test("status --json prints the node's document, valid against the schema", async () => {
  await withNode(statusHandler, async (run) => {
    const io = recordingIo();
    assert.equal(await main(["status", "--json", "--run", run], io), 0);
    const doc = JSON.parse(io.stdout.join("\n"));
    assert.deepEqual(validateSchema(doc, STATUS_JSON_SCHEMA), []);
    assert.equal(doc.identity.cn, "6/16");
  });
});

Deno.test("status finds the socket through the node's option file", async () => {
  await withNode(statusHandler, async (run) => {
    const conf = Deno.makeTempFileSync({ suffix: ".conf" });
    try {
      Deno.writeTextFileSync(conf, `registry http://r/\nrun ${run}\n`);
      const io = recordingIo();
      assert.equal(await main(["status", "--config", conf], io), 0);
      assert.match(io.stdout.join("\n"), /re6st node 6\/16/);
    } finally {
      Deno.removeSync(conf);
    }
  });
});

Deno.test("status of a stopped node fails cleanly with exit code 3", async () => {
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-" });
  try {
    const io = recordingIo();
    assert.equal(await main(["status", "--run", run], io), 3);
    assert.equal(io.stderr.length, 1);
    assert.match(io.stderr[0], /no node is running/);
  } finally {
    Deno.removeSync(run, { recursive: true });
  }
});

Deno.test("status --wait succeeds once the node is connected", async () => {
  let calls = 0;
  const handler = () => {
    calls++;
    return calls < 3 ? sampleStatus({ tunnels: [] }) : sampleStatus();
  };
  await withNode(handler, async (run) => {
    const io = recordingIo();
    const code = await main(["status", "--run", run, "--wait", "connected", "--timeout", "10"], io);
    assert.equal(code, 0);
    assert.ok(calls >= 3);
    assert.match(io.stdout[0], /connected/);
  });
});

Deno.test("status --wait times out saying what was missing", async () => {
  await withNode(() => sampleStatus({ tunnels: [] }), async (run) => {
    const io = recordingIo();
    const code = await main(["status", "--run", run, "--wait", "connected", "--timeout", "1"], io);
    assert.equal(code, 1);
    assert.match(io.stderr[0], /not connected after 1s: no established tunnel/);
  });
});

Deno.test("malformed and oversized requests are refused while the server keeps serving", async () => {
  const errors: string[] = [];
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-" });
  const socket = runFile(run, "control");
  const server = await serveControl(socket, statusHandler, (m) => errors.push(m));
  try {
    assert.equal(Deno.statSync(socket).mode! & 0o777, 0o600);
    const bad = await rawRequest(socket, new TextEncoder().encode("not json\n"));
    assert.match(JSON.parse(bad).error, /malformed request/);
    const huge = new Uint8Array(MAX_REQUEST_BYTES * 4).fill(0x61);
    const big = await rawRequest(socket, huge);
    assert.match(JSON.parse(big).error, /longer than/);
    const doc = await queryControl(socket, { request: "status" }) as { identity: { cn: string } };
    assert.equal(doc.identity.cn, "6/16");
    assert.equal(errors.length, 2);
  } finally {
    await server.close();
    Deno.removeSync(run, { recursive: true });
  }
});

Deno.test("a second server refuses to start while the first answers; a stale socket is replaced", async () => {
  await withNode(statusHandler, async (_run, socket) => {
    await assert.rejects(serveControl(socket, statusHandler), /in use by another process/);
  });
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-" });
  const socket = runFile(run, "control");
  try {
    // A socket file nobody listens on any more, as after kill -9.
    const l = Deno.listen({ transport: "unix", path: socket });
    l.close();
    const server = await serveControl(socket, statusHandler);
    await server.close();
    assert.throws(() => Deno.statSync(socket), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(run, { recursive: true });
  }
});

Deno.test("a control socket whose mode cannot be set is closed and its path freed", async () => {
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-" });
  const socket = runFile(run, "control");
  try {
    await assert.rejects(
      serveControl(socket, statusHandler, () => {}, {
        chmod: () => {
          throw new Error("Operation not permitted");
        },
      }),
      /Cannot restrict control socket .* to mode 0600/,
    );
    // Nothing listens there any more: a new server can take the path.
    const server = await serveControl(socket, statusHandler);
    await server.close();
  } finally {
    Deno.removeSync(run, { recursive: true });
  }
});

const ROUTE: RouteAnswer = {
  address: "2001:db8:42:9::1",
  local: false,
  route: {
    prefix: "2001:db8:42:9::/64",
    from: null,
    node: "9/16",
    metric: 96,
    refmetric: 0,
    nextHop: "fe80::9",
    interface: "re6stnet1",
    peer: "9/16",
    tunnel: { direction: "client", protocol: "udp", peer: "9/16" },
    installed: true,
    routerId: "02:00:00:00:00:00:00:09",
  },
  alternatives: [],
};

Deno.test("status --route asks the node for Babel's path and says when there is none", async () => {
  const asked: unknown[] = [];
  const handler = (req: Record<string, unknown>) => {
    asked.push(req);
    return req.address === ROUTE.address ? ROUTE : { ...ROUTE, address: req.address, route: null };
  };
  await withNode(handler, async (run) => {
    const io = recordingIo();
    assert.equal(await main(["status", "--run", run, "--route", ROUTE.address], io), 0);
    assert.match(
      io.stdout[0],
      /^Route to 2001:db8:42:9::1\n {2}chosen: +2001:db8:42:9::\/64 via fe80::9/,
    );
    const json = recordingIo();
    assert.equal(await main(["status", "--run", run, "--route", ROUTE.address, "--json"], json), 0);
    assert.deepEqual(JSON.parse(json.stdout.join("\n")), ROUTE);
    const none = recordingIo();
    assert.equal(await main(["status", "--run", run, "--route", "2001:db8::1"], none), 1);
    assert.match(none.stdout[0], /none: babeld installed no route/);
    assert.deepEqual(asked[0], { request: "route", address: ROUTE.address });
    const bad = recordingIo();
    assert.equal(await main(["status", "--run", run, "--route", "10.1.2.3"], bad), 2);
    assert.match(bad.stderr[0], /option --route: "10.1.2.3" is not an IPv6 address/);
  });
  await withNode(() => ({ error: "the node is still starting" }), async (run) => {
    const io = recordingIo();
    assert.equal(await main(["status", "--run", run, "--route", ROUTE.address], io), 1);
    assert.match(io.stderr[0], /node refused the request: the node is still starting/);
  });
});

Deno.test("status --follow prints each line of the node's stream and exits 3 when it ends", async () => {
  async function* lines() {
    yield { event: "following", node: "6/16" };
    yield { event: "tunnel-opened", interface: "re6stnet1" };
    yield { event: "node-stopping" };
  }
  await withNode(() => controlStream(lines()), async (run) => {
    const io = recordingIo();
    assert.equal(await main(["status", "--run", run, "--follow"], io), 3);
    assert.deepEqual(io.stdout.map((l) => JSON.parse(l).event), [
      "following",
      "tunnel-opened",
      "node-stopping",
    ]);
  });
});

Deno.test("a follower that hangs up ends the node's stream; closing the server ends it too", async () => {
  const ended: string[] = [];
  const handler = (_req: Record<string, unknown>, signal: AbortSignal) =>
    controlStream((async function* () {
      yield { event: "following" };
      await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      ended.push("stream saw the hang-up");
    })());
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-" });
  const socket = runFile(run, "control");
  const server = await serveControl(socket, handler);
  try {
    const stop = new AbortController();
    const got: unknown[] = [];
    const how = await followControl(socket, { request: "follow" }, (v) => {
      got.push(v);
      stop.abort();
    }, stop.signal);
    assert.equal(how, "interrupted");
    assert.deepEqual(got, [{ event: "following" }]);
    await waitFor(() => ended.length === 1, { what: "the stream ending after the hang-up" });
    let secondLines = 0;
    const second = followControl(socket, { request: "follow" }, () => secondLines++, NEVER);
    await waitFor(() => secondLines === 1, { what: "the second follower's first line" });
    await server.close();
    assert.equal(await second, "ended");
  } finally {
    await server.close();
    Deno.removeSync(run, { recursive: true });
  }
});
