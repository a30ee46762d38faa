import assert from "node:assert/strict";
import { type HookDeps, run } from "../../cmd/ovpn_hook.ts";
import { recordingIo } from "../../cmd/io.ts";
import type { HookEvent } from "../../core/openvpn/hooks.ts";
import {
  type HookHandler,
  sendHookRequest,
  SocketInUseError,
  startHookServer,
  writeHookScript,
} from "../../platform/hook_server.ts";
import { recordingRunner } from "../../platform/runner.ts";
import { selfArgv, selfEnv } from "../../platform/self.ts";

const CONNECT_ENV = {
  script_type: "client-connect",
  dev: "re6stnet-udp",
  common_name: "2/16",
  tls_serial_0: "22798",
  trusted_ip: "10.9.0.2",
  trusted_port: "33381",
};

/** A temporary run folder with a hook server whose handler is `handler`. */
async function withServer(
  handler: HookHandler,
  body: (ctx: { dir: string; socket: string; events: HookEvent[] }) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "re6st-hook-" });
  const socket = `${dir}/ovpn-hook.sock`;
  const events: HookEvent[] = [];
  const server = await startHookServer({
    path: socket,
    handler: (ev) => {
      events.push(ev);
      return handler(ev);
    },
  });
  try {
    await body({ dir, socket, events });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function deps(env: Record<string, string>, files: Map<string, string>): HookDeps {
  return {
    env,
    now: () => 1795307222_000,
    send: sendHookRequest,
    runner: recordingRunner(),
    writeTextFile: (p, t) => (files.set(p, t), Promise.resolve()),
  };
}

Deno.test("the hook socket is private to root and removed on close", async () => {
  await withServer(() => {}, async ({ socket }) => {
    const st = await Deno.lstat(socket);
    assert.equal(st.isSocket, true);
    assert.equal(st.mode! & 0o777, 0o600);
  });
});

Deno.test("an accepted client-connect writes the external_ip push to OpenVPN's file", async () => {
  await withServer(() => ({ accept: true }), async ({ socket, events }) => {
    const files = new Map<string, string>();
    const io = recordingIo();
    const code = await run(["--socket", socket, "/tmp/cc.tmp"], io, deps(CONNECT_ENV, files));
    assert.equal(code, 0, io.stderr.join("\n"));
    assert.equal(files.get("/tmp/cc.tmp"), `push "setenv-safe external_ip 10.9.0.2"\n`);
    assert.equal(events.length, 1);
    assert.equal(events[0].type, "client-connect");
    assert.equal(events[0].type === "client-connect" && events[0].serial, 22798n);
  });
});

Deno.test("a client-connect the node refuses makes the hook exit 1 with the reason", async () => {
  const refuse: HookHandler = (ev) =>
    ev.type === "client-connect" && ev.serial === 22798n
      ? { accept: false, reason: "serial 22798 is revoked" }
      : { accept: true };
  await withServer(refuse, async ({ socket }) => {
    const files = new Map<string, string>();
    const io = recordingIo();
    const code = await run(["--socket", socket, "/tmp/cc.tmp"], io, deps(CONNECT_ENV, files));
    assert.equal(code, 1);
    assert.equal(files.size, 0);
    assert.match(io.stderr.join("\n"), /refused by the node: serial 22798 is revoked/);
  });
});

Deno.test("a node that fails or gives no answer refuses the client", async () => {
  await withServer(() => undefined, async ({ socket }) => {
    const io = recordingIo();
    assert.equal(await run(["--socket", socket, "/x"], io, deps(CONNECT_ENV, new Map())), 1);
    assert.match(io.stderr.join("\n"), /no answer/);
  });
  await withServer(() => {
    throw new Error("database locked");
  }, async ({ socket }) => {
    const io = recordingIo();
    assert.equal(await run(["--socket", socket, "/x"], io, deps(CONNECT_ENV, new Map())), 1);
    assert.match(io.stderr.join("\n"), /database locked/);
  });
});

Deno.test("the up hook brings the tap up with OpenVPN's MTU and tells the node", async () => {
  await withServer(() => {}, async ({ socket, events }) => {
    const d = deps({ script_type: "up", dev: "re6stnet1", tun_mtu: "1390" }, new Map());
    const io = recordingIo();
    assert.equal(
      await run(["--socket", socket, "re6stnet1", "1390", "0", "", "", "init"], io, d),
      0,
    );
    assert.deepEqual((d.runner as ReturnType<typeof recordingRunner>).lines(), [
      "ip link set dev re6stnet1 up mtu 1390",
    ]);
    assert.deepEqual(events.map((e) => e.type === "up" && e.mtu), [1390]);
  });
});

Deno.test("without a reachable node the up hook still succeeds but client-connect refuses", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const socket = `${dir}/none.sock`;
    const up = recordingIo();
    const upEnv = { script_type: "up", dev: "re6stnet1", tun_mtu: "1500" };
    assert.equal(await run(["--socket", socket], up, deps(upEnv, new Map())), 0);
    assert.match(up.stderr.join("\n"), /node unreachable.*continuing/);
    const cc = recordingIo();
    assert.equal(await run(["--socket", socket, "/x"], cc, deps(CONNECT_ENV, new Map())), 1);
    assert.match(cc.stderr.join("\n"), /refusing the client/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stale socket is replaced and a live one is refused", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  try {
    // A process that dies without closing its listener leaves the socket file behind.
    const code = `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} }); Deno.exit(0);`;
    await new Deno.Command(Deno.execPath(), { args: ["eval", code] }).output();
    assert.equal((await Deno.lstat(path)).isSocket, true);
    const a = await startHookServer({ path, handler: () => {} });
    try {
      await assert.rejects(startHookServer({ path, handler: () => {} }), SocketInUseError);
    } finally {
      await a.close();
    }
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    await Deno.writeTextFile(path, "not a socket");
    await assert.rejects(startHookServer({ path, handler: () => {} }), /not a socket/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the hook script runs the program from source and reaches the node", async () => {
  await withServer(() => ({ accept: true }), async ({ dir, socket, events }) => {
    const script = `${dir}/ovpn-hook`;
    const self = selfArgv();
    await writeHookScript(script, self, socket, selfEnv());
    assert.equal((await Deno.stat(script)).mode! & 0o777, 0o700);
    const cc = `${dir}/cc.tmp`;
    const started = performance.now();
    // OpenVPN clears the environment: run the script the same way.
    const out = await new Deno.Command(script, {
      args: [cc],
      clearEnv: true,
      env: { ...CONNECT_ENV, PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    }).output();
    const ms = Math.round(performance.now() - started);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(await Deno.readTextFile(cc), `push "setenv-safe external_ip 10.9.0.2"\n`);
    assert.equal(events.length, 1);
    console.log(`hook round trip from source: ${ms} ms`);
  });
});
