import assert from "node:assert/strict";
import {
  clientConnectConfig,
  connectReply,
  decodeHookReply,
  decodeHookRequest,
  encodeHookReply,
  encodeHookRequest,
  HookError,
  type HookRequest,
  hookScript,
  parseHookRequest,
  shellQuote,
} from "../../core/openvpn/hooks.ts";

// Environments as OpenVPN 2.6.14 gave them to hooks (observed, trimmed).
const CONNECT_ENV = {
  script_type: "client-connect",
  dev: "re6stnet-udp",
  common_name: "2/16",
  tls_serial_0: "22798",
  tls_serial_1: "4660",
  trusted_ip: "10.9.0.2",
  trusted_port: "33381",
  client_connect_config_file: "/tmp/openvpn_cc_19f7.tmp",
  daemon_pid: "8281",
  IV_VER: "2.6.14",
  PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
};

const ROUTE_UP_ENV = {
  script_type: "route-up",
  dev: "re6stnet1",
  common_name: "1/16",
  tls_serial_0: "8729",
  OPENVPN_external_ip: "10.9.0.2",
  trusted_ip: "10.9.0.1",
  trusted_port: "1194",
  daemon_pid: "8345",
};

const req = (env: Record<string, string>, args: string[] = [], time = 1795307222): HookRequest =>
  decodeHookRequest(encodeHookRequest(env, args, time));

Deno.test("a hook forwards only the OpenVPN variables the node needs", () => {
  const r = req(CONNECT_ENV, ["/tmp/openvpn_cc_19f7.tmp"]);
  assert.equal(r.env.common_name, "2/16");
  assert.equal(r.env.IV_VER, undefined);
  assert.equal(r.env.PATH, undefined);
  assert.equal(r.env.tls_serial_1, undefined);
  assert.deepEqual(r.args, ["/tmp/openvpn_cc_19f7.tmp"]);
  assert.equal(r.time, 1795307222);
});

Deno.test("client-connect events carry the client's name, serial and address", () => {
  assert.deepEqual(parseHookRequest(req(CONNECT_ENV)), {
    type: "client-connect",
    dev: "re6stnet-udp",
    commonName: "2/16",
    serial: 22798n,
    trustedIp: "10.9.0.2",
    trustedPort: 33381,
    time: 1795307222,
    openvpnPid: 8281,
  });
});

Deno.test("route-up events carry the server's name, serial and our external address", () => {
  assert.deepEqual(parseHookRequest(req(ROUTE_UP_ENV)), {
    type: "route-up",
    dev: "re6stnet1",
    commonName: "1/16",
    serial: 8729n,
    externalIp: "10.9.0.2",
    time: 1795307222,
    openvpnPid: 8345,
  });
});

Deno.test("up events carry the tap and its MTU", () => {
  const ev = parseHookRequest(req({ script_type: "up", dev: "re6stnet-tcp", tun_mtu: "1500" }));
  assert.deepEqual(ev, {
    type: "up",
    dev: "re6stnet-tcp",
    mtu: 1500,
    time: 1795307222,
    openvpnPid: undefined,
  });
});

Deno.test("client-disconnect events over IPv6 give IPv4-mapped addresses as IPv4", () => {
  const { trusted_ip: _, ...env } = CONNECT_ENV;
  const ev = parseHookRequest(req({
    ...env,
    script_type: "client-disconnect",
    trusted_ip6: "::ffff:192.0.2.9",
    bytes_received: "1234",
    time_duration: "61",
  }));
  assert.equal(ev.type, "client-disconnect");
  if (ev.type !== "client-disconnect") return;
  assert.equal(ev.trustedIp, "192.0.2.9");
  assert.equal(ev.bytesReceived, 1234);
  assert.equal(ev.bytesSent, undefined);
  assert.equal(ev.duration, 61);
  const v6 = parseHookRequest(
    req({ ...env, script_type: "client-connect", trusted_ip6: "2001:db8::9" }),
  );
  assert.equal(v6.type === "client-connect" && v6.trustedIp, "2001:db8::9");
});

Deno.test("incomplete or odd hook environments are refused with the variable named", () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ ...CONNECT_ENV, tls_serial_0: "" }, /tls_serial_0/],
    [{ ...CONNECT_ENV, tls_serial_0: "12:34" }, /tls_serial_0/],
    [{ ...CONNECT_ENV, common_name: "evil" }, /common_name/],
    [{ ...CONNECT_ENV, trusted_port: "x" }, /trusted_port/],
    [{ ...CONNECT_ENV, dev: "a b" }, /dev/],
    [{ ...CONNECT_ENV, script_type: "tls-verify" }, /script_type/],
    [{ script_type: "up", dev: "re6stnet1" }, /tun_mtu/],
    [{ dev: "re6stnet1" }, /script_type/],
  ];
  for (const [env, re] of bad) {
    assert.throws(
      () => parseHookRequest(req(env)),
      (e: Error) => e instanceof HookError && re.test(e.message),
    );
  }
});

Deno.test("malformed hook lines and replies are refused", () => {
  assert.throws(() => decodeHookRequest("{"), HookError);
  assert.throws(
    () => decodeHookRequest(JSON.stringify({ v: 2, env: {}, args: [], time: 1 })),
    /version/,
  );
  assert.throws(
    () => decodeHookRequest(JSON.stringify({ v: 1, env: { a: 1 }, args: [], time: 1 })),
    HookError,
  );
  assert.throws(() => decodeHookReply(JSON.stringify({ v: 1 })), HookError);
  assert.deepEqual(decodeHookReply(encodeHookReply({ ok: false, error: "revoked" })), {
    v: 1,
    ok: false,
    error: "revoked",
  });
});

Deno.test("an accepted client is told the address it is seen from (VECTORS §16)", () => {
  assert.equal(clientConnectConfig("203.0.113.9"), `push "setenv-safe external_ip 203.0.113.9"\n`);
  const ev = parseHookRequest(req(CONNECT_ENV));
  if (ev.type !== "client-connect") throw new Error("wrong type");
  assert.deepEqual(connectReply(ev, { accept: true }), {
    ok: true,
    config: `push "setenv-safe external_ip 10.9.0.2"\n`,
  });
  assert.deepEqual(connectReply(ev, { accept: false, reason: "serial 22798 is revoked" }), {
    ok: false,
    error: "serial 22798 is revoked",
  });
  assert.throws(() => clientConnectConfig(`1.2.3.4"\npush "route`), HookError);
});

Deno.test("the hook script runs the program with the socket and OpenVPN's arguments", () => {
  const text = hookScript(
    ["/usr/bin/deno", "run", "-A", "--config", "/src/re 6st/deno.json", "/src/re 6st/main.ts"],
    "/run/re6stnet/ovpn-hook.sock",
    { DENO_DIR: "/var/cache/it's" },
  );
  assert.equal(
    text,
    [
      "#!/bin/sh",
      "# Written by re6st: OpenVPN runs this for --up, --route-up, --client-connect and",
      "# --client-disconnect; it reports to the node over its hook socket.",
      `DENO_DIR='/var/cache/it'\\''s'; export DENO_DIR`,
      "exec /usr/bin/deno run -A --config '/src/re 6st/deno.json' '/src/re 6st/main.ts' " +
      `ovpn-hook --socket /run/re6stnet/ovpn-hook.sock "$@"`,
      "",
    ].join("\n"),
  );
  assert.equal(shellQuote("a$b"), "'a$b'");
  assert.throws(() => hookScript(["x"], "/s", { "A B": "1" }), /variable name/);
});
