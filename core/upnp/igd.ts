// UPnP IGD messages, built and parsed without I/O: SSDP search (UPnP Device Architecture
// 1.1 §1.3), device description (§2) and SOAP control (§3) for the WANIPConnection and
// WANPPPConnection services. platform/upnp.ts sends and receives them.

import type { MappingKey, MappingProtocol, MappingRequest, PortMapping } from "./port_mapper.ts";

/** SSDP multicast group and port (UDA 1.1 §1.3). */
export const SSDP_ADDRESS = "239.255.255.250";
export const SSDP_PORT = 1900;

/** Search targets sent, best first: IGD v2 and v1 devices, then the WAN services alone. */
export const SSDP_TARGETS = [
  "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
  "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
  "urn:schemas-upnp-org:service:WANIPConnection:1",
  "urn:schemas-upnp-org:service:WANPPPConnection:1",
] as const;

/** WAN services that do port mapping, preferred first. */
const WAN_SERVICES = [
  /^urn:schemas-upnp-org:service:WANIPConnection:[12]$/,
  /^urn:schemas-upnp-org:service:WANPPPConnection:1$/,
];

/** Text of an SSDP M-SEARCH for `target`; `mxS` is how long devices may wait to answer. */
export function ssdpSearch(target: string, mxS = 1): string {
  return [
    "M-SEARCH * HTTP/1.1",
    `HOST: ${SSDP_ADDRESS}:${SSDP_PORT}`,
    'MAN: "ssdp:discover"',
    `MX: ${mxS}`,
    `ST: ${target}`,
    "",
    "",
  ].join("\r\n");
}

/** The device description URL of an SSDP answer (`LOCATION` of a 200 reply), or null. */
export function ssdpLocation(reply: string): string | null {
  const lines = reply.split(/\r?\n/);
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? "")) return null;
  for (const line of lines.slice(1)) {
    const m = /^location:\s*(\S+)\s*$/i.exec(line);
    if (m && /^https?:\/\//i.test(m[1])) return m[1];
  }
  return null;
}

/** The port-mapping service of a device description. */
export interface WanService {
  serviceType: string;
  controlUrl: string;
}

/** Finds the WANIPConnection (preferred) or WANPPPConnection service in a device description. */
export function findWanService(description: string, location: string): WanService | null {
  const base = xmlText(description, "URLBase") || location;
  const services = [...description.matchAll(/<(?:\w+:)?service>([\s\S]*?)<\/(?:\w+:)?service>/g)]
    .map((m) => ({ type: xmlText(m[1], "serviceType"), url: xmlText(m[1], "controlURL") }))
    .filter((s) => s.type && s.url);
  for (const want of WAN_SERVICES) {
    const s = services.find((s) => want.test(s.type!));
    if (!s) continue;
    try {
      return { serviceType: s.type!, controlUrl: new URL(s.url!, base).href };
    } catch {
      continue;
    }
  }
  return null;
}

/** A SOAP call ready to POST to a control URL. */
export interface SoapCall {
  headers: Record<string, string>;
  body: string;
}

/** Builds the SOAP request of `action` with its arguments, in order (UPnP DA 1.1 §3.2.1). */
export function soapRequest(
  serviceType: string,
  action: string,
  args: readonly (readonly [string, string | number])[] = [],
): SoapCall {
  const inner = args.map(([k, v]) => `<${k}>${xmlEscape(String(v))}</${k}>`).join("");
  return {
    headers: {
      "Content-Type": 'text/xml; charset="utf-8"',
      "SOAPAction": `"${serviceType}#${action}"`,
    },
    body: '<?xml version="1.0"?>\r\n' +
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
      's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
      `<u:${action} xmlns:u="${xmlEscape(serviceType)}">${inner}</u:${action}>` +
      "</s:Body></s:Envelope>\r\n",
  };
}

/** A UPnP error carried by a SOAP fault. */
export interface SoapFault {
  code: number;
  description: string;
}

/** The UPnP error of a SOAP fault body, or null when the body holds none. */
export function soapFault(body: string): SoapFault | null {
  const code = xmlText(body, "errorCode");
  if (code === null || !/^\d+$/.test(code.trim())) return null;
  return { code: Number(code), description: xmlText(body, "errorDescription") ?? "" };
}

/**
 * Output arguments of a SOAP answer to `action`; throws when the body is not that answer.
 * Arguments absent from the answer are absent from the result.
 */
export function soapResponse(
  body: string,
  action: string,
  names: readonly string[],
): Record<string, string> {
  const m = new RegExp(
    `<(?:\\w+:)?${action}Response\\b[^>]*?(?:/>|>([\\s\\S]*?)</(?:\\w+:)?${action}Response>)`,
  ).exec(body);
  if (!m) throw new Error(`the answer is not a ${action}Response`);
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = xmlText(m[1] ?? "", n);
    if (v !== null) out[n] = v;
  }
  return out;
}

/** Arguments of AddPortMapping for `req` with `internalClient` (WANIPConnection:1 §2.4.16). */
export function addMappingArgs(
  req: MappingRequest,
  internalClient: string,
): [string, string | number][] {
  return [
    ["NewRemoteHost", ""],
    ["NewExternalPort", req.externalPort],
    ["NewProtocol", req.protocol],
    ["NewInternalPort", req.internalPort],
    ["NewInternalClient", internalClient],
    ["NewEnabled", 1],
    ["NewPortMappingDescription", req.description],
    ["NewLeaseDuration", req.leaseS],
  ];
}

/** Arguments of DeletePortMapping (WANIPConnection:1 §2.4.17). */
export function deleteMappingArgs(key: MappingKey): [string, string | number][] {
  return [["NewRemoteHost", ""], ["NewExternalPort", key.externalPort], [
    "NewProtocol",
    key.protocol,
  ]];
}

/** Output arguments of GetGenericPortMappingEntry. */
export const MAPPING_ENTRY_FIELDS = [
  "NewExternalPort",
  "NewProtocol",
  "NewInternalPort",
  "NewInternalClient",
  "NewEnabled",
  "NewPortMappingDescription",
  "NewLeaseDuration",
] as const;

/** A mapping from the output arguments of GetGenericPortMappingEntry, or null if malformed. */
export function mappingEntry(out: Record<string, string>): PortMapping | null {
  const protocol = out.NewProtocol?.trim().toUpperCase();
  const externalPort = port(out.NewExternalPort);
  const internalPort = port(out.NewInternalPort);
  if ((protocol !== "TCP" && protocol !== "UDP") || !externalPort || !internalPort) return null;
  return {
    protocol: protocol as MappingProtocol,
    externalPort,
    internalPort,
    internalClient: (out.NewInternalClient ?? "").trim(),
    leaseS: Number(out.NewLeaseDuration?.trim()) || 0,
    description: out.NewPortMappingDescription ?? "",
    enabled: (out.NewEnabled ?? "1").trim() !== "0",
  };
}

function port(text: string | undefined): number | null {
  const n = Number(text?.trim());
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : null;
}

/** Unescaped text of the first element named `name` (any namespace prefix), or null. */
export function xmlText(xml: string, name: string): string | null {
  const m = new RegExp(
    `<(?:\\w+:)?${name}(?:\\s[^>]*?)?(?:/>|>([\\s\\S]*?)</(?:\\w+:)?${name}\\s*>)`,
  ).exec(xml);
  if (!m) return null;
  return xmlUnescape((m[1] ?? "").trim());
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

/** XML text with `& < > " '` escaped. */
export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Text of XML character data: entities and CDATA sections resolved. */
export function xmlUnescape(text: string): string {
  const cdata = /^<!\[CDATA\[([\s\S]*)\]\]>$/.exec(text);
  if (cdata) return cdata[1];
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    if (e[0] === "#") {
      const n = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : Number(e.slice(1));
      return String.fromCodePoint(n);
    }
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[e.toLowerCase()]!;
  });
}
