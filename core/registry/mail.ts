// Token e-mail (PROTOCOL.md §5.5): an SMTP client (nodemailer) or an mbox file.

import nodemailer from "nodemailer";

/** One text/plain message. */
export interface MailMessage {
  /** From header and envelope sender (the CA emailAddress); omitted when undefined. */
  from?: string;
  to: string;
  subject: string;
  text: string;
}

/** Something that delivers a message; rejects with a descriptive error. */
export interface Mailer {
  send(msg: MailMessage): Promise<void>;
  /** Releases connections. */
  close(): void;
}

/** The token message of §5.5. */
export function tokenMessage(caEmail: string | undefined, to: string, token: string): MailMessage {
  return {
    from: caEmail,
    to,
    subject: "[re6stnet] Token Request",
    text: `Hello, your token to join re6st network is: ${token}\n`,
  };
}

/** SMTP settings: `--mailhost host[:port]`, `--smtp-starttls`, `--smtp-user`, `--smtp-pwd`. */
export interface SmtpOptions {
  mailhost: string;
  starttls?: boolean;
  user?: string;
  password?: string;
  /** Connection and greeting timeout, ms (default 30 000). */
  timeoutMs?: number;
}

/** Host and port of a `host[:port]` or `[v6]:port` mailhost (default port 25). */
export function parseMailhost(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) return { host: text, port: 25 }; // bare IPv6 literal
  const port = m[2] === undefined ? 25 : Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new Error(`Invalid --mailhost port in "${text}"`);
  return { host: m[1], port };
}

/** A Mailer speaking SMTP; STARTTLS only when asked (and then required), like the reference. */
export function smtpMailer(opts: SmtpOptions): Mailer {
  const { host, port } = parseMailhost(opts.mailhost);
  const t = opts.timeoutMs ?? 30_000;
  const transport = nodemailer.createTransport({
    host,
    port,
    secure: false,
    requireTLS: !!opts.starttls,
    ignoreTLS: !opts.starttls,
    // The reference's STARTTLS does not verify the server certificate either.
    tls: { rejectUnauthorized: false },
    auth: opts.user ? { user: opts.user, pass: opts.password ?? "" } : undefined,
    connectionTimeout: t,
    greetingTimeout: t,
    socketTimeout: t,
  });
  return {
    async send(msg) {
      try {
        await transport.sendMail({
          from: msg.from,
          to: msg.to,
          subject: msg.subject,
          text: msg.text,
          envelope: { from: msg.from ?? "", to: msg.to },
        });
      } catch (cause) {
        throw new Error(`Cannot send mail to ${msg.to} through ${host}:${port}`, { cause });
      }
    },
    close: () => transport.close(),
  };
}

/** The mbox form of a message (§5.5 debug mode): "From " line, headers, body, blank line. */
export function mboxEntry(msg: MailMessage, date: Date): string {
  const headers = [
    `Content-Type: text/plain; charset="us-ascii"`,
    "MIME-Version: 1.0",
    "Content-Transfer-Encoding: 7bit",
    `Subject: ${msg.subject}`,
    ...(msg.from ? [`From: ${msg.from}`] : []),
    `To: ${msg.to}`,
  ];
  const body = msg.text.replace(/^(>*From )/gm, ">$1");
  return `From MAILER-DAEMON ${asctime(date)}\n${headers.join("\n")}\n\n${body}\n`;
}

/** A Mailer appending to an mbox file through `append` (injected file access). */
export function mboxMailer(
  path: string,
  append: (path: string, text: string) => Promise<void>,
  now: () => Date = () => new Date(),
): Mailer {
  return {
    async send(msg) {
      try {
        await append(path, mboxEntry(msg, now()));
      } catch (cause) {
        throw new Error(`Cannot append mail for ${msg.to} to mbox "${path}"`, { cause });
      }
    },
    close() {},
  };
}

function asctime(d: Date): string {
  const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getUTCDay()];
  const mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
    d.getUTCMonth()
  ];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${day} ${mon} ${String(d.getUTCDate()).padStart(2)} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}
