// The port-mapping seam between the node's UPnP logic (core/upnp/forwarding.ts) and the
// gateway client that talks to the network (platform/upnp.ts). Plain data in, plain data out;
// a fake in unit tests implements the same interface.

/** Transport of a port mapping, as UPnP IGD names it. */
export type MappingProtocol = "TCP" | "UDP";

/** An Internet Gateway Device found on the LAN. */
export interface Gateway {
  /** SOAP control URL of its WANIPConnection / WANPPPConnection service: names it in logs. */
  controlUrl: string;
  /** Service type, e.g. `urn:schemas-upnp-org:service:WANIPConnection:2`. */
  serviceType: string;
  /** URL of its device description (the SSDP `LOCATION`). */
  location: string;
  /** Our IPv4 address on the link towards it: the internal client of our mappings. */
  localAddress: string;
}

/** Which mapping: the gateway keys mappings by external port and protocol. */
export interface MappingKey {
  protocol: MappingProtocol;
  externalPort: number;
}

/** A mapping to create or renew; the internal client is always {@link Gateway.localAddress}. */
export interface MappingRequest extends MappingKey {
  internalPort: number;
  /** Lease in seconds; 0 asks for a permanent mapping. */
  leaseS: number;
  description: string;
}

/** A mapping as the gateway lists it. */
export interface PortMapping extends MappingKey {
  internalClient: string;
  internalPort: number;
  /** Remaining lease in seconds (0: permanent). */
  leaseS: number;
  description: string;
  enabled: boolean;
}

/** A client of Internet Gateway Devices (UPnP IGD v1/v2). */
export interface PortMapper {
  /** Searches the LAN for a gateway; null when none answered within `timeoutMs`. */
  discover(timeoutMs: number): Promise<Gateway | null>;
  /** The gateway's external (WAN) IPv4 address. */
  externalAddress(gw: Gateway): Promise<string>;
  /** Creates a mapping to our address, or renews it when it exists with the same target. */
  addMapping(gw: Gateway, req: MappingRequest): Promise<void>;
  /** Removes a mapping. */
  deleteMapping(gw: Gateway, key: MappingKey): Promise<void>;
  /** Every mapping the gateway holds (all clients). */
  listMappings(gw: Gateway): Promise<PortMapping[]>;
}

/** UPnP error codes the logic reacts to (UPnP IGD WANIPConnection, error codes table). */
export const UPNP_NO_SUCH_ENTRY = 714;
export const UPNP_CONFLICT = 718;
export const UPNP_ONLY_PERMANENT_LEASES = 725;

/** A gateway call failed: which gateway, which action, the UPnP error code when it sent one. */
export class UpnpError extends Error {
  override name = "UpnpError";
  constructor(
    /** The gateway's control URL (or, for discovery, what was searched). */
    readonly gateway: string,
    /** SOAP action (`AddPortMapping`…) or `discover`. */
    readonly action: string,
    /** Why, in words (`718 ConflictInMappingEntry`, `HTTP 404`, `no answer within 5000 ms`). */
    readonly reason: string,
    /** UPnP error code from a SOAP fault, when there was one. */
    readonly code?: number,
    options?: ErrorOptions,
  ) {
    super(`UPnP ${action} on gateway ${gateway} failed: ${reason}`, options);
  }
}

/** The UPnP error code of `e`, when it is a {@link UpnpError} from a SOAP fault. */
export function upnpCode(e: unknown): number | undefined {
  return e instanceof UpnpError ? e.code : undefined;
}
