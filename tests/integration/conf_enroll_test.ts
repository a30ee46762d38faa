// `re6st conf` (runConf) against the real registry over HTTP on loopback, real files in a
// temporary folder, and a real SMTP server (npm:smtp-server) for e-mail tokens.

import assert from "node:assert/strict";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { prefixFromCn } from "../../core/addressing.ts";
import { type Certificate, fingerprint, parseCertificate, validateCert } from "../../core/cert.ts";
import { loadPrivateKey, spkiDer, toHex } from "../../core/crypto.ts";
import { type ConfOptions, runConf } from "../../core/conf/enroll.ts";
import { UsageError } from "../../core/errors.ts";
import { memoryLogger } from "../../core/log.ts";
import { decodeNetworkConfig } from "../../core/netconfig/document.ts";
import { verifyVersion } from "../../core/netconfig/version.ts";
import { RegistryClient, RegistryError } from "../../core/registry/client.ts";
import type { RegistryConfig } from "../../core/registry/config.ts";
import { type RunningRegistry, startRegistry } from "../../cmd/registry_daemon.ts";
import { recordingIo } from "../../cmd/io.ts";
import { main } from "../../main.ts";
import { realConfFiles } from "../../platform/files.ts";
import { type RegistryFiles, registryFiles } from "../helpers/registry.ts";
import { type ManualClock, manualClock } from "../../core/clock.ts";

const DAY_S = 86400;

interface Env {
  url: string;
  reg: RunningRegistry;
  files: RegistryFiles;
  /** Folder where conf writes. */
  dir: string;
  clock: ManualClock;
  /** Mails received by the SMTP server (raw data), when one runs. */
  mails: string[];
  /** Resolves with the next mail received. */
  nextMail(): Promise<string>;
  /** Registry log lines. */
  log: ReturnType<typeof memoryLogger>;
}

/** Starts an SMTP server on 127.0.0.1 that keeps every message. */
async function smtpServer() {
  const mails: string[] = [];
  const waiters: ((m: string) => void)[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    onData(stream, _session, cb) {
      let data = "";
      stream.on("data", (c: Uint8Array) => data += new TextDecoder().decode(c));
      stream.on("end", () => {
        mails.push(data);
        waiters.shift()?.(data);
        cb();
      });
    },
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  const port = (server.server.address() as { port: number }).port;
  let seen = 0;
  return {
    port,
    mails,
    /** The next mail not yet returned, waiting up to 10 s. */
    next(): Promise<string> {
      if (mails.length > seen) return Promise.resolve(mails[seen++]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        new Promise<string>((res) => waiters.push((m) => (seen++, res(m)))),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error("no token mail within 10 s")), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
    },
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

async function withEnv(
  fn: (env: Env) => Promise<void>,
  opts: { extra?: Partial<RegistryConfig>; smtp?: boolean } = {},
) {
  const mail = opts.smtp ? await smtpServer() : null;
  const extra = { ...opts.extra, ...(mail ? { mailhost: `127.0.0.1:${mail.port}` } : {}) };
  const files = await registryFiles(extra, mail ? { email: "ca@example.com" } : {});
  const clock = manualClock(Date.now());
  const dir = await Deno.makeTempDir({ prefix: "re6st-conf-test-" });
  const log = memoryLogger(3);
  let env: Env | null = null;
  try {
    const reg = await startRegistry(files.config, { log, clock, openRelaySocket: () => null });
    env = {
      url: `http://127.0.0.1:${reg.port}/`,
      reg,
      files,
      dir,
      clock,
      mails: mail?.mails ?? [],
      nextMail: () => mail ? mail.next() : Promise.reject(new Error("no SMTP server")),
      log,
    };
    await fn(env);
  } catch (e) {
    console.error(log.lines.join("\n"));
    throw e;
  } finally {
    await env?.reg.stop();
    await mail?.close();
    await files.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

function conf(env: Env, o: Partial<ConfOptions>, io = recordingIo()): Promise<number> {
  const opts: ConfOptions = {
    registry: env.url,
    isNeeded: false,
    caOnly: false,
    dir: env.dir,
    req: [],
    anonymous: false,
    ...o,
  };
  return runConf(opts, io, { files: realConfFiles() });
}

const read = (env: Env, name: string) => Deno.readTextFile(join(env.dir, name));

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) out[e.name] = await Deno.readTextFile(join(dir, e.name));
  return out;
}

/** A registry client acting as the enrolled node, from the files conf wrote. */
async function nodeClient(env: Env): Promise<{ client: RegistryClient; cert: Certificate }> {
  const cert = parseCertificate(await read(env, "cert.crt"));
  const client = new RegistryClient(env.url, {
    identity: {
      prefix: prefixFromCn(cert.cn!),
      key: loadPrivateKey(await read(env, "cert.key")),
      ca: await read(env, "ca.crt"),
    },
  });
  return { client, cert };
}

Deno.test("enrolls anonymously: files, key mode, a certificate the node can use with the registry", async () => {
  await withEnv(async (env) => {
    const io = recordingIo();
    assert.equal(await conf(env, { anonymous: true }, io), 0);
    assert.deepEqual(Object.keys(await snapshot(env.dir)).sort(), [
      "ca.crt",
      "cert.crt",
      "cert.key",
      "re6stnet.conf",
    ]);
    assert.equal((await Deno.stat(join(env.dir, "cert.key"))).mode! & 0o777, 0o600);
    assert.equal(await read(env, "ca.crt"), env.files.caPem);
    const ca = parseCertificate(env.files.caPem);
    const { client, cert } = await nodeClient(env);
    assert.equal(validateCert(cert, ca), null);
    assert.equal(cert.cn, "0/16");
    assert.ok(io.stdout.includes("Your subnet: 2001:db8:42::/64 (CN=0/16)"), io.stdout.join("\n"));
    assert.match(await read(env, "re6stnet.conf"), new RegExp(`^registry ${env.url}\nca ca.crt\n`));

    const params = await decodeNetworkConfig(
      await client.getNetworkConfig(),
      loadPrivateKey(await read(env, "cert.key")),
    );
    assert.equal(params.registry_prefix, "0000000000000000");
    assert.ok(verifyVersion(ca.publicKey, params.version as Uint8Array) !== null);
  });
});

Deno.test("enrolls with a token mailed through a real SMTP server and typed at the prompt", async () => {
  await withEnv(async (env) => {
    const answers: (() => Promise<string | null>)[] = [
      () => Promise.resolve("alice@example.com"),
      async () => /join re6st network is: ([a-z]{8})/.exec(await env.nextMail())![1],
    ];
    const io = { ...recordingIo(), prompt: () => answers.shift()!() };
    assert.equal(await conf(env, {}, io), 0);
    assert.equal(env.mails.length, 1);
    assert.match(env.mails[0], /^To: alice@example\.com\r?$/m);
    const admin = new RegistryClient(env.url);
    assert.equal(await admin.getNodePrefix("alice@example.com"), "0/16");
  }, { smtp: true });
});

Deno.test("without a terminal the token is mailed and the retry with --token enrolls", async () => {
  await withEnv(async (env) => {
    await assert.rejects(
      conf(env, { email: "bob@example.com" }),
      /run again with --token TOKEN/,
    );
    assert.ok(!Object.keys(await snapshot(env.dir)).includes("cert.crt"));
    const token = /join re6st network is: ([a-z]{8})/.exec(await env.nextMail())![1];
    assert.equal(await conf(env, { token }), 0);
    assert.equal(parseCertificate(await read(env, "cert.crt")).cn, "0/16");
  }, { smtp: true });
});

Deno.test("renewal: unchanged inside the validity, new certificate in the renewal window", async () => {
  await withEnv(async (env) => {
    await conf(env, { anonymous: true });
    const { client, cert } = await nodeClient(env);
    assert.equal(await client.renewCertificate(), cert.pem);
    await env.clock.advance(340 * DAY_S * 1000);
    const renewed = parseCertificate((await client.renewCertificate())!);
    assert.equal(renewed.cn, cert.cn);
    assert.ok(renewed.serial > cert.serial);
    assert.ok(renewed.notAfter.getTime() > cert.notAfter.getTime());
    assert.deepEqual(renewed.spki, cert.spki);
  });
});

Deno.test("a revocation shows in the network configuration and the node gets a replacement", async () => {
  await withEnv(async (env) => {
    await conf(env, { anonymous: true }); // 0/16: the registry node, whose prefix stays
    await conf(env, { anonymous: true }); // 1/16, same key
    const { client, cert } = await nodeClient(env);
    const key = loadPrivateKey(await read(env, "cert.key"));
    const before = await decodeNetworkConfig(await client.getNetworkConfig(), key);
    await new RegistryClient(env.url).revoke(String(cert.serial));
    const after = await decodeNetworkConfig(await client.getNetworkConfig(), key);
    assert.deepEqual(after.crl, [Number(cert.serial)]);
    assert.ok(toHex(after.version as Uint8Array) > toHex(before.version as Uint8Array));
    const replacement = parseCertificate((await client.renewCertificate())!);
    assert.notEqual(replacement.serial, cert.serial);
    assert.equal(replacement.notAfter.getTime(), cert.notAfter.getTime());
    // Revoked by CN: the node can no longer open a session.
    await new RegistryClient(env.url).revoke(cert.cn!);
    client.resetSession();
    await assert.rejects(
      client.getNetworkConfig(),
      (e: Error) => e instanceof RegistryError && e.status === 404,
    );
  });
});

Deno.test("the client opens a new session after the registry restarts", async () => {
  await withEnv(async (env) => {
    await conf(env, { anonymous: true });
    const { client } = await nodeClient(env);
    assert.equal(typeof await client.getDh(), "string");
    await env.reg.stop();
    env.reg = await startRegistry({ ...env.files.config, port: env.reg.port }, {
      log: env.log,
      clock: env.clock,
      openRelaySocket: () => null,
    });
    assert.match(await client.getDh(), /BEGIN DH PARAMETERS/);
    const after = env.log.lines.slice(env.log.lines.findLastIndex((l) => /listening/.test(l)));
    assert.deepEqual(after.map((l) => / GET (\w+ \d+) /.exec(l)?.[1]).filter(Boolean), [
      "getDh 401",
      "hello 200",
      "getDh 200",
    ]);
  });
});

Deno.test("--fingerprint: the right one passes quietly, a wrong one writes nothing", async () => {
  await withEnv(async (env) => {
    const ca = parseCertificate(env.files.caPem);
    const good = `sha256:${toHex(fingerprint(ca.der, "sha256")).toUpperCase()}`;
    const wrong = `sha256:${"ab".repeat(32)}`;
    await assert.rejects(conf(env, { anonymous: true, fingerprint: wrong }), /does not match/);
    assert.deepEqual(await snapshot(env.dir), {});
    await assert.rejects(conf(env, { anonymous: true, fingerprint: "sha256:abcd" }), UsageError);
    const io = recordingIo();
    assert.equal(await conf(env, { anonymous: true, fingerprint: good }, io), 0);
    assert.deepEqual(io.stderr, []);
  });
});

Deno.test("a second run reuses cert.key and keeps the subject", async () => {
  await withEnv(async (env) => {
    await conf(env, { anonymous: true, req: [["O", "Example"]] });
    const key = await read(env, "cert.key");
    await conf(env, { anonymous: true });
    assert.equal(await read(env, "cert.key"), key);
    const cert = parseCertificate(await read(env, "cert.crt"));
    assert.equal(cert.cn, "1/16");
    assert.deepEqual(cert.spki, spkiDer(loadPrivateKey(key)));
    assert.deepEqual(cert.subject.map((a) => `${a.name}=${a.value}`), [
      "O=Example",
      "serialNumber=1",
      "CN=1/16",
    ]);
  });
});

Deno.test("a failed run leaves every existing file as it was", async () => {
  await withEnv(async (env) => {
    await conf(env, { anonymous: true });
    const before = await snapshot(env.dir);
    await assert.rejects(conf(env, { token: "abcdefgh" }), /Invalid or expired token/);
    assert.deepEqual(await snapshot(env.dir), before);
  });
});

Deno.test("a registry refusing anonymous registrations gets a clear error and no certificate", async () => {
  await withEnv(async (env) => {
    await assert.rejects(
      conf(env, { anonymous: true }),
      /does not accept anonymous registrations/,
    );
    assert.ok(!Object.keys(await snapshot(env.dir)).includes("cert.crt"));
  }, { extra: { anonymousPrefixLength: 0 } });
});

Deno.test("--ca-only writes only ca.crt; -r CN is refused before anything happens", async () => {
  await withEnv(async (env) => {
    assert.equal(await conf(env, { caOnly: true }), 0);
    assert.deepEqual(Object.keys(await snapshot(env.dir)), ["ca.crt"]);
    await Deno.remove(join(env.dir, "ca.crt"));
    await assert.rejects(conf(env, { anonymous: true, req: [["CN", "1/16"]] }), UsageError);
    assert.deepEqual(await snapshot(env.dir), {});
  });
});

Deno.test("the re6st conf command line enrolls and reports usage errors with exit 2", async () => {
  await withEnv(async (env) => {
    const io = recordingIo();
    const args = ["conf", "--registry", env.url, "-d", env.dir, "--anonymous", "-r", "O", "X"];
    assert.equal(await main(args, io), 0, io.stderr.join("\n"));
    assert.equal(parseCertificate(await read(env, "cert.crt")).cn, "0/16");
    const bad = recordingIo();
    assert.equal(await main([...args, "--fingerprint", "sha1:00"], bad), 2);
    assert.match(bad.stderr.join("\n"), /--fingerprint/);
    const wrong = recordingIo();
    assert.equal(
      await main(["conf", "--registry", env.url, "-d", env.dir, "--token", "x"], wrong),
      1,
    );
    assert.match(wrong.stderr.join("\n"), /^re6st conf: Invalid or expired token/m);
  });
});
