// The registry's token mailer chosen from --mailhost (PROTOCOL.md §5.5): an mbox file, created
// readable by its owner only (it holds tokens), or an SMTP transport (nodemailer, loaded only
// when a registry mails through SMTP).

import type { Logger } from "../core/log.ts";
import type { ResolvedRegistryConfig } from "../core/registry/config.ts";
import {
  type Mailer,
  type MailTransport,
  mboxMailer,
  parseMailhost,
  smtpMailer,
} from "../core/registry/mail.ts";

/** Connection, greeting and socket timeout of the SMTP client, ms. */
export const SMTP_TIMEOUT_MS = 30_000;

/** Appends `text` to the mbox `path`, creating it with mode 0600 whatever the umask. */
export async function appendMbox(path: string, text: string): Promise<void> {
  const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  try {
    if ((await file.stat()).size === 0) await Deno.chmod(path, 0o600);
    const data = new TextEncoder().encode(text);
    for (let off = 0; off < data.length;) off += await file.write(data.subarray(off));
  } finally {
    file.close();
  }
}

/** An SMTP transport for `--mailhost host[:port]`; STARTTLS only when asked (then required). */
export async function smtpTransport(
  c: Pick<ResolvedRegistryConfig, "mailhost" | "smtpStarttls" | "smtpUser" | "smtpPwd">,
  timeoutMs = SMTP_TIMEOUT_MS,
): Promise<{ transport: MailTransport; where: string }> {
  const { host, port } = parseMailhost(c.mailhost!);
  const { default: nodemailer } = await import("nodemailer");
  const transport = nodemailer.createTransport({
    host,
    port,
    secure: false,
    requireTLS: !!c.smtpStarttls,
    ignoreTLS: !c.smtpStarttls,
    // The reference's STARTTLS does not verify the server certificate either.
    tls: { rejectUnauthorized: false },
    auth: c.smtpUser ? { user: c.smtpUser, pass: c.smtpPwd ?? "" } : undefined,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return { transport, where: `${host}:${port}` };
}

/** The token mailer of --mailhost: an mbox file (absolute path or existing file) or SMTP. */
export async function registryMailer(
  c: ResolvedRegistryConfig,
  log: Logger,
): Promise<Mailer | null> {
  if (!c.mailhost) return null;
  let isFile = c.mailhost.startsWith("/");
  if (!isFile) {
    try {
      isFile = Deno.statSync(c.mailhost).isFile;
    } catch {
      // not a file: an SMTP host
    }
  }
  if (isFile) {
    log.info(`Token mails are appended to mbox "${c.mailhost}"`);
    return mboxMailer(c.mailhost, appendMbox);
  }
  const { transport, where } = await smtpTransport(c);
  log.info(`Token mails are sent through SMTP server ${where}`);
  return smtpMailer(transport, where);
}
