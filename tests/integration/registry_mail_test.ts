// Token e-mail through a real SMTP server on loopback (npm:smtp-server) and to an mbox file.

import assert from "node:assert/strict";
import { SMTPServer } from "smtp-server";
import { parseCertificate } from "../../core/cert.ts";
import { memoryLogger } from "../../core/log.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { startRegistry } from "../../cmd/registry_daemon.ts";
import { nodeCsr, registryFiles } from "../helpers/registry.ts";

interface Received {
  from: string;
  to: string[];
  data: string;
  user?: string;
  secure: boolean;
}

async function smtp(opts: { starttls: boolean; login: boolean }) {
  const mails: Received[] = [];
  const server = new SMTPServer({
    secure: false,
    hideSTARTTLS: !opts.starttls,
    authOptional: !opts.login,
    disabledCommands: opts.login ? [] : ["AUTH"],
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === "relay" && auth.password === "s3cret") cb(null, { user: "relay" });
      else cb(new Error("bad login"));
    },
    onData(stream, session, cb) {
      let data = "";
      stream.on("data", (c: Uint8Array) => data += new TextDecoder().decode(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          data,
          user: session.user as string | undefined,
          secure: session.secure,
        });
        cb();
      });
    },
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  const port = (server.server.address() as { port: number }).port;
  return {
    mails,
    port,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

for (const variant of [{ starttls: false, login: false }, { starttls: true, login: true }]) {
  Deno.test(`mails a token by SMTP${variant.starttls ? " with STARTTLS and login" : ""} and the token enrolls once`, async () => {
    const mailServer = await smtp(variant);
    const files = await registryFiles({
      mailhost: `127.0.0.1:${mailServer.port}`,
      smtpStarttls: variant.starttls,
      smtpUser: variant.login ? "relay" : undefined,
      smtpPwd: variant.login ? "s3cret" : undefined,
    }, { email: "ca@example.com" });
    const reg = await startRegistry(files.config, {
      log: memoryLogger(),
      openRelaySocket: () => null,
    });
    try {
      const client = new RegistryClient(`http://127.0.0.1:${reg.port}/`);
      await client.requestToken("alice@example.com");
      assert.equal(mailServer.mails.length, 1);
      const mail = mailServer.mails[0];
      assert.equal(mail.from, "ca@example.com");
      assert.deepEqual(mail.to, ["alice@example.com"]);
      assert.equal(mail.secure, variant.starttls);
      assert.equal(mail.user, variant.login ? "relay" : undefined);
      assert.match(mail.data, /^Subject: \[re6stnet\] Token Request\r?$/m);
      assert.match(mail.data, /^From: ca@example\.com\r?$/m);
      const token = /join re6st network is: ([a-z]{8})/.exec(mail.data)![1];
      assert.equal(await client.isToken(token), true);
      const pem = await client.requestCertificate(token, (await nodeCsr(0)).csr);
      assert.ok(pem);
      assert.equal(parseCertificate(pem).cn, "0/16");
      assert.equal(await client.getNodePrefix("alice@example.com"), "0/16");
      assert.equal(await client.requestCertificate(token, (await nodeCsr(1)).csr), null);
    } finally {
      await reg.stop();
      await mailServer.close();
      await files.cleanup();
    }
  });
}

Deno.test("a failed SMTP delivery answers 500 and stores no token", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const files = await registryFiles({ mailhost: `127.0.0.1:${port}` });
  const reg = await startRegistry(files.config, {
    log: memoryLogger(),
    openRelaySocket: () => null,
  });
  try {
    const r = await fetch(`http://127.0.0.1:${reg.port}/requestToken?email=a%40b.c`);
    await r.body?.cancel();
    assert.equal(r.status, 500);
    assert.equal(reg.registry.db.sql.prepare("SELECT count(*) AS n FROM token").get()!.n, 0);
  } finally {
    await reg.stop();
    await files.cleanup();
  }
});

Deno.test("appends the token mail to an mbox file when mailhost is a path", async () => {
  const files = await registryFiles({}, { email: "ca@example.com" });
  const mbox = `${files.dir}/mbox`;
  const reg = await startRegistry({ ...files.config, mailhost: mbox }, {
    log: memoryLogger(),
    openRelaySocket: () => null,
  });
  try {
    const client = new RegistryClient(`http://127.0.0.1:${reg.port}/`);
    await client.requestToken("bob@example.com");
    await client.requestToken("bob@example.com");
    const text = await Deno.readTextFile(mbox);
    assert.equal(text.match(/^From MAILER-DAEMON /gm)?.length, 2);
    assert.match(text, /^To: bob@example\.com$/m);
    const tokens = [...text.matchAll(/join re6st network is: ([a-z]{8})\n/g)].map((m) => m[1]);
    assert.equal(tokens.length, 2);
    assert.equal(await client.isToken(tokens[1]), true);
  } finally {
    await reg.stop();
    await files.cleanup();
  }
});
