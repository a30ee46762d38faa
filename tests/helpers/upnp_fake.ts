// A fake Internet Gateway Device implementing the real PortMapper interface: a mapping table
// that behaves like miniupnpd's (conflicts between clients, renewals by the same client,
// 714 on a missing entry), a switch for being reachable, and failures injected per action.

import {
  type Gateway,
  type MappingKey,
  type PortMapper,
  type PortMapping,
  UPNP_CONFLICT,
  UPNP_NO_SUCH_ENTRY,
  UPNP_ONLY_PERMANENT_LEASES,
  UpnpError,
} from "../../core/upnp/port_mapper.ts";
import type { UpnpStore } from "../../core/upnp/record.ts";

/** What a {@link fakeGateway} lets a test see and steer. */
export interface FakeGateway extends PortMapper {
  gateway: Gateway;
  /** Mappings the gateway holds. */
  table: PortMapping[];
  /** Calls in order: `discover`, `AddPortMapping TCP 1194 lease 3600`, … */
  calls: string[];
  /** Whether it answers at all (discovery and calls). */
  present: boolean;
  externalIp: string;
  /** Accepts only permanent leases (answers 725 to a lease). */
  onlyPermanent: boolean;
  /** Makes the next call of `action` fail with `error`. */
  failNext(action: string, error: Error): void;
  /** Adds a mapping of another client or another program. */
  foreign(m: Partial<PortMapping> & MappingKey): void;
}

/** A fake gateway at 10.77.0.1 whose LAN client is 10.77.0.2, external address 11.42.0.254. */
export function fakeGateway(opts: { localAddress?: string } = {}): FakeGateway {
  const gateway: Gateway = {
    controlUrl: "http://10.77.0.1:5000/ctl/IPConn",
    serviceType: "urn:schemas-upnp-org:service:WANIPConnection:2",
    location: "http://10.77.0.1:5000/rootDesc.xml",
    localAddress: opts.localAddress ?? "10.77.0.2",
  };
  const failures = new Map<string, Error[]>();
  const fake: FakeGateway = {
    gateway,
    table: [],
    calls: [],
    present: true,
    externalIp: "11.42.0.254",
    onlyPermanent: false,
    failNext(action, error) {
      failures.set(action, [...(failures.get(action) ?? []), error]);
    },
    foreign(m) {
      fake.table.push({
        internalClient: "10.77.0.9",
        internalPort: m.externalPort,
        leaseS: 0,
        description: "someone else",
        enabled: true,
        ...m,
      });
    },
    discover() {
      fake.calls.push("discover");
      return Promise.resolve(fake.present ? { ...gateway } : null);
    },
    externalAddress(gw) {
      return call(gw, "GetExternalIPAddress", () => fake.externalIp);
    },
    addMapping(gw, req) {
      const what = `${req.protocol} ${req.externalPort} lease ${req.leaseS}`;
      return call(gw, `AddPortMapping ${what}`, () => {
        if (fake.onlyPermanent && req.leaseS !== 0) throw fault(gw, "AddPortMapping", 725);
        const i = fake.table.findIndex((m) => same(m, req));
        if (i >= 0 && fake.table[i].internalClient !== gw.localAddress) {
          throw fault(gw, "AddPortMapping", UPNP_CONFLICT);
        }
        const m: PortMapping = { ...req, internalClient: gw.localAddress, enabled: true };
        if (i >= 0) fake.table[i] = m;
        else fake.table.push(m);
      });
    },
    deleteMapping(gw, key) {
      return call(gw, `DeletePortMapping ${key.protocol} ${key.externalPort}`, () => {
        const i = fake.table.findIndex((m) => same(m, key));
        if (i < 0) throw fault(gw, "DeletePortMapping", UPNP_NO_SUCH_ENTRY);
        fake.table.splice(i, 1);
      });
    },
    listMappings(gw) {
      return call(gw, "GetGenericPortMappingEntry", () => fake.table.map((m) => ({ ...m })));
    },
  };
  function call<T>(gw: Gateway, what: string, fn: () => T): Promise<T> {
    fake.calls.push(what);
    const action = what.split(" ")[0];
    const queued = failures.get(action)?.shift();
    if (queued) return Promise.reject(queued);
    if (!fake.present) {
      return Promise.reject(
        new UpnpError(gw.controlUrl, action, "no answer from 10.77.0.1:5000 within 5000 ms"),
      );
    }
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e);
    }
  }
  return fake;
}

function same(a: MappingKey, b: MappingKey): boolean {
  return a.protocol === b.protocol && a.externalPort === b.externalPort;
}

const NAMES: Record<number, string> = {
  [UPNP_CONFLICT]: "ConflictInMappingEntry",
  [UPNP_NO_SUCH_ENTRY]: "NoSuchEntryInArray",
  [UPNP_ONLY_PERMANENT_LEASES]: "OnlyPermanentLeasesSupported",
  606: "Action not authorized",
};

/** The error a gateway's SOAP fault with `code` gives. */
export function fault(gw: Gateway, action: string, code: number): UpnpError {
  return new UpnpError(gw.controlUrl, action, `error ${code} ${NAMES[code] ?? ""}`.trim(), code);
}

/** A record store in memory; `writes` keeps every text written, in order. */
export function memoryStore(text: string | null = null): UpnpStore & {
  text: string | null;
  writes: (string | null)[];
} {
  const s = {
    text,
    writes: [] as (string | null)[],
    read: () => Promise.resolve(s.text),
    write(t: string) {
      s.text = t;
      s.writes.push(t);
      return Promise.resolve();
    },
    remove() {
      s.text = null;
      s.writes.push(null);
      return Promise.resolve();
    },
  };
  return s;
}
