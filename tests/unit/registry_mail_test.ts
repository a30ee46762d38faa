// Token mails (core/registry/mail.ts, sanitize.ts): one plain address, text from the network
// escaped before it reaches an mbox or a log.

import assert from "node:assert/strict";
import { isMailAddress, mboxEntry, smtpMailer } from "../../core/registry/mail.ts";
import { escapeControls, escapingLogger } from "../../core/registry/sanitize.ts";
import { memoryLogger } from "../../core/log.ts";

Deno.test("a mail address is one plain addr-spec of at most 254 characters", () => {
  const longest = "a".repeat(64) + "@" + "x".repeat(189);
  for (
    const ok of [
      "a@b",
      "first.last+tag@sub.example.org",
      "o'brien@x.example",
      "é@x.example",
      longest,
    ]
  ) {
    assert.ok(isMailAddress(ok), ok);
  }
  for (
    const bad of [
      "",
      "a",
      "@x",
      "a@",
      "a@b@c",
      "a@x,b@y",
      "a@x b@y",
      "a b@x",
      "<a@x>",
      'a"b@x',
      "a@x;b@y",
      "Bcc: a@x",
      "a@(comment)x",
      "a@[192.0.2.1]",
      "a@x.",
      "a@.x",
      "a\\b@x",
      "a\t@x",
      "a@x\r\n",
      "a\u0000@x",
      "a\u007f@x",
      "a\u0085@x",
      "a\u2028@x",
      "a".repeat(65) + "@x",
      "a@" + "x".repeat(253),
    ]
  ) {
    assert.ok(!isMailAddress(bad), JSON.stringify(bad));
  }
});

Deno.test("control characters are escaped for logs and mbox files", () => {
  assert.equal(
    escapeControls("a\u001b[2Jb\r\nc\u000b\u000c\u0085\u2028d"),
    "a\\x1b[2Jb\\x0d\\x0ac\\x0b\\x0c\\x85\\u2028d",
  );
  assert.equal(escapeControls("plain é text"), "plain é text");
  const log = memoryLogger(4);
  escapingLogger(log).child("http").info("from \u001b]0;evil\u0007 peer\nforged line");
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0], /INFO http: from \\x1b\]0;evil\\x07 peer\\x0aforged line$/);
  const entry = mboxEntry(
    { from: "ca@x\u001b", to: "a@x\r\nBcc: b@y", subject: "s\u000b", text: "From here\n" },
    new Date(0),
  );
  // deno-lint-ignore no-control-regex -- control characters are what it looks for
  assert.ok(!/[\u0000-\u0009\u000b-\u001f]/.test(entry), entry);
  assert.match(entry, /^To: a@x\\x0d\\x0aBcc: b@y$/m);
  assert.match(entry, /^>From here$/m);
});

Deno.test("the SMTP mailer sends to exactly the one address and refuses anything else", async () => {
  const sent: unknown[] = [];
  const mailer = smtpMailer({
    sendMail: (m) => Promise.resolve(void sent.push(m)),
    close() {},
  }, "smtp.example:25");
  await mailer.send({ from: "ca@x.example", to: "a@x.example", subject: "s", text: "t" });
  assert.deepEqual(sent, [{
    from: "ca@x.example",
    to: "a@x.example",
    subject: "s",
    text: "t",
    envelope: { from: "ca@x.example", to: ["a@x.example"] },
  }]);
  await assert.rejects(
    mailer.send({ to: "a@x, b@y", subject: "s", text: "t" }),
    /Refusing to mail/,
  );
  assert.equal(sent.length, 1);
});
