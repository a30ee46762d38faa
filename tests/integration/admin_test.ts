// `re6st admin` against a real registry process on loopback (an authorized origin), and
// through a reverse proxy that makes it an unauthorized one.
import assert from "node:assert/strict";
import { recordingIo } from "../../cmd/io.ts";
import { parseCertificate } from "../../core/cert.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { main } from "../../main.ts";
import { nodeCsr } from "../helpers/registry.ts";
import { startRegistryCli } from "../helpers/registry_cli.ts";

async function admin(url: string, ...args: string[]) {
  const io = recordingIo();
  const code = await main(["admin", "--registry", url, ...args], io);
  return { code, out: io.stdout.join("\n"), err: io.stderr.join("\n") };
}

Deno.test("re6st admin: tokens, prefixes, revocation, HMAC keys, versions and topology", async (t) => {
  const reg = await startRegistryCli();
  const client = new RegistryClient(reg.url);
  try {
    const firstCn = parseCertificate(
      (await client.requestCertificate("", (await nodeCsr(0)).csr))!,
    ).cn!;
    let carolCn = "";
    await t.step("token add prints a new token, check finds it, delete removes it", async () => {
      const added = await admin(reg.url, "token", "add", "alice@example.com");
      assert.equal(added.code, 0, added.err);
      assert.match(added.out, /^[a-z]{8}$/);
      assert.deepEqual(await admin(reg.url, "token", "check", added.out), {
        code: 0,
        out: `Token ${added.out} exists`,
        err: "",
      });
      const again = await admin(reg.url, "token", "add", "bob@example.com", added.out);
      assert.equal(again.code, 1);
      assert.equal(again.err, `re6st admin: ${reg.url}: token ${added.out} already exists`);
      assert.equal((await admin(reg.url, "token", "delete", added.out)).code, 0);
      const gone = await admin(reg.url, "--json", "token", "check", added.out);
      assert.equal(gone.code, 1);
      assert.deepEqual(JSON.parse(gone.out), { token: added.out, exists: false });
    });
    await t.step(
      "prefix names the node registered with an e-mail, or says there is none",
      async () => {
        assert.equal(
          (await admin(reg.url, "token", "add", "carol@example.com", "carolstk")).code,
          0,
        );
        const pem = await client.requestCertificate("carolstk", (await nodeCsr(1)).csr);
        const cn = carolCn = parseCertificate(pem!).cn!;
        const found = await admin(reg.url, "prefix", "carol@example.com");
        assert.equal(found.code, 0, found.err);
        assert.match(found.out, new RegExp(`^${cn} 2001:db8:42:[0-9a-f]+::$`));
        const json = JSON.parse(
          (await admin(reg.url, "--json", "prefix", "carol@example.com")).out,
        );
        assert.equal(json.cn, cn);
        const none = await admin(reg.url, "prefix", "nobody@example.com");
        assert.deepEqual(none, {
          code: 1,
          out: "",
          err: "re6st admin: No node is registered with nobody@example.com",
        });
      },
    );
    await t.step("revoke by CN, then again: no such certificate; by unknown serial", async () => {
      assert.deepEqual(await admin(reg.url, "revoke", carolCn), {
        code: 0,
        out: `Revoked ${carolCn}`,
        err: "",
      });
      const again = await admin(reg.url, "revoke", carolCn);
      assert.equal(again.code, 1);
      assert.equal(again.err, `re6st admin: ${reg.url}: no certificate with CN ${carolCn}`);
      const own = await admin(reg.url, "revoke", firstCn);
      assert.equal(own.code, 4, "the registry's own node is refused, and says so");
      assert.equal(
        own.err,
        `re6st admin: ${reg.url}: forbidden (HTTP 403): refusing to free the prefix of the ` +
          `registry node ${firstCn}`,
      );
      const serial = await admin(reg.url, "revoke", "999999");
      assert.equal(serial.code, 1);
      assert.match(serial.err, /no certificate with serial 999999/);
    });
    await t.step("hmac rotate advances the network configuration", async () => {
      const r = await admin(reg.url, "hmac", "rotate");
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^Babel HMAC keys advanced one step/);
    });
    await t.step("versions and topology list the registry's node (no node runs here)", async () => {
      const versions = await admin(reg.url, "--json", "versions");
      assert.equal(versions.code, 0, versions.err);
      assert.deepEqual(JSON.parse(versions.out).map((r: { version: string }) => r.version), [null]);
      const table = await admin(reg.url, "versions");
      assert.match(table.out, /^NODE +VERSION\n\d+\/16 +\(no answer\)$/);
      const topology = await admin(reg.url, "--json", "topology");
      assert.equal(topology.code, 0, topology.err);
      assert.deepEqual(JSON.parse(topology.out), { "": [] });
    });
  } finally {
    assert.equal(await reg.stop(), 0);
  }
});

Deno.test("re6st admin through a proxy: 403 names the address the registry saw and what it accepts", async () => {
  const reg = await startRegistryCli();
  const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const u = new URL(req.url);
    const r = await fetch(`${reg.url.slice(0, -1)}${u.pathname}${u.search}`, {
      headers: { "X-Forwarded-For": "192.0.2.7" },
    });
    return new Response(await r.arrayBuffer(), { status: r.status });
  });
  try {
    const r = await admin(`http://127.0.0.1:${proxy.addr.port}/`, "revoke", "1/16");
    assert.equal(r.code, 4);
    assert.equal(r.out, "");
    assert.match(
      r.err,
      /^re6st admin: http:\/\/127\.0\.0\.1:\d+\/: forbidden \(HTTP 403\): private method revoke called from 127\.0\.0\.1 \(X-Forwarded-For: 192\.0\.2\.7\); this registry accepts private methods only from 127\.0\.0\.1, ::1 \(--authorized-origin\), the X-Forwarded-For address included$/,
    );
  } finally {
    await proxy.shutdown();
    await reg.stop();
  }
});

Deno.test("re6st admin: usage errors exit 2, an unreachable registry 1", async () => {
  const cases: [string[], RegExp][] = [
    [["revoke"], /revoke: expects 1 argument, got 0/],
    [["revoke", "bob"], /"bob" is neither a CN/],
    [["token", "frob", "x"], /token: expects add, check or delete, not "frob"/],
    [["hmac"], /the only command is "hmac rotate"/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["--registry", "ftp://x/", "versions"], /option --registry: .*only http/],
    [["--bogus", "versions"], /unknown option --bogus/],
  ];
  for (const [args, why] of cases) {
    const io = recordingIo();
    assert.equal(await main(["admin", ...args], io), 2, args.join(" "));
    assert.match(io.stderr.join("\n"), why);
  }
  const r = await admin("http://127.0.0.1:9/", "--timeout", "5", "versions");
  assert.equal(r.code, 1);
  assert.match(r.err, /^re6st admin: Registry http:\/\/127\.0\.0\.1:9\/ versions: request failed/);
  const help = recordingIo();
  assert.equal(await main(["admin", "--help"], help), 0);
  assert.match(
    help.stdout[0],
    /^Usage: re6st admin[\s\S]*token add EMAIL \[TOKEN\][\s\S]*Exit codes:/,
  );
});
