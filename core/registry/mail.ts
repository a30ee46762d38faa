// Token e-mail (PROTOCOL.md §5.5): over an SMTP transport (nodemailer's, made in platform/) or
// appended to an mbox file; one recipient per mail, a plain addr-spec checked beforehand.

import { escapeControls } from "./sanitize.ts";

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

/** Longest e-mail address accepted (RFC 5321 path limit minus the angle brackets). */
export const MAX_ADDRESS_CHARS = 254;

/** Characters never in an address we mail to: separators, quotes, brackets, controls. */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const ADDRESS_PART = /^[^\s"<>,;:@\\()[\]\u0000-\u001f\u007f-\u009f\u2028\u2029]+$/;

/**
 * Whether `text` is exactly one plain address `local@domain` (an addr-spec without quoting,
 * comments or display name) of at most 254 characters: no comma, space, quote, angle bracket
 * or control character, so that a mail goes to that one recipient and nobody else.
 */
export function isMailAddress(text: string): boolean {
  if (text.length > MAX_ADDRESS_CHARS) return false;
  const at = text.indexOf("@");
  if (at <= 0 || at !== text.lastIndexOf("@")) return false;
  const local = text.slice(0, at), domain = text.slice(at + 1);
  return local.length <= 64 && ADDRESS_PART.test(local) && ADDRESS_PART.test(domain) &&
    domain.split(".").every((label) => label !== "");
}

/** What the registry needs of an SMTP transport (nodemailer's Transporter). */
export interface MailTransport {
  sendMail(msg: {
    from?: string;
    to: string;
    subject: string;
    text: string;
    envelope: { from: string; to: string[] };
  }): Promise<unknown>;
  close(): void;
}

/** Host and port of a `host[:port]` or `[v6]:port` mailhost (default port 25). */
export function parseMailhost(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) return { host: text, port: 25 }; // bare IPv6 literal
  const port = m[2] === undefined ? 25 : Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new Error(`Invalid --mailhost port in "${text}"`);
  return { host: m[1], port };
}

/** A Mailer over `transport`; `where` names the server in errors ("host:port"). */
export function smtpMailer(transport: MailTransport, where: string): Mailer {
  return {
    async send(msg) {
      if (!isMailAddress(msg.to)) throw new Error(`Refusing to mail ${escapeControls(msg.to)}`);
      try {
        await transport.sendMail({
          from: msg.from,
          to: msg.to,
          subject: msg.subject,
          text: msg.text,
          envelope: { from: msg.from ?? "", to: [msg.to] },
        });
      } catch (cause) {
        throw new Error(`Cannot send mail to ${msg.to} through ${where}`, { cause });
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
    `Subject: ${escapeControls(msg.subject)}`,
    ...(msg.from ? [`From: ${escapeControls(msg.from)}`] : []),
    `To: ${escapeControls(msg.to)}`,
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
