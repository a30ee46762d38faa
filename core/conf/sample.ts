// Texts written or printed by `re6st conf` (PROTOCOL.md §9.4).

import { RENEW_PERIOD_S } from "../constants.ts";

/** The sample re6stnet.conf written when none exists; `country` comes from --location. */
export function sampleConfig(registry: string, country?: string): string {
  const lines = [
    `registry ${registry}`,
    "ca ca.crt",
    "cert cert.crt",
    "key cert.key",
  ];
  if (country) lines.push(`country ${country}`);
  lines.push(
    "# increase re6stnet verbosity:",
    "#verbose 3",
    "# enable OpenVPN logging:",
    "#ovpnlog",
    "# increase OpenVPN verbosity:",
    "#O--verb",
    "#O3",
  );
  return lines.join("\n") + "\n";
}

/** A date as `YYYY-MM-DD HH:MM:SS UTC`. */
export function formatUtc(date: Date): string {
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** When a node will renew a certificate expiring at `notAfter` (§3.8). */
export function renewalDate(notAfter: Date): Date {
  return new Date(notAfter.getTime() - RENEW_PERIOD_S * 1000);
}

/** The lines printed after a successful enrollment: subnet, CN, validity, renewal date. */
export function enrollmentReport(
  subnet: string,
  cn: string,
  notBefore: Date,
  notAfter: Date,
): string[] {
  return [
    `Your subnet: ${subnet} (CN=${cn})`,
    `Certificate valid from ${formatUtc(notBefore)} until ${formatUtc(notAfter)}`,
    `It will be renewed automatically after ${formatUtc(renewalDate(notAfter))}`,
  ];
}
