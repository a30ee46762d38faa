// The UPnP client's SOAP calls against a gateway played by an HTTP server on loopback:
// what it sends, what it reads back, and errors that name the gateway and the call.
import assert from "node:assert/strict";
import { describeError } from "../../core/errors.ts";
import { type Gateway, UpnpError } from "../../core/upnp/port_mapper.ts";
import { createPortMapper, httpRequest } from "../../platform/upnp.ts";

const SERVICE = "urn:schemas-upnp-org:service:WANIPConnection:1";

const answer = (action: string, args: Record<string, string | number> = {}) =>
  new Response(
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
      `<u:${action}Response xmlns:u="${SERVICE}">` +
      Object.entries(args).map(([k, v]) => `<${k}>${v}</${k}>`).join("") +
      `</u:${action}Response></s:Body></s:Envelope>`,
    { headers: { "content-type": 'text/xml; charset="utf-8"' } },
  );

const fault = (code: number, description: string) =>
  new Response(
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>' +
      "<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>" +
      `<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode>` +
      `<errorDescription>${description}</errorDescription></UPnPError></detail></s:Fault>` +
      "</s:Body></s:Envelope>",
    { status: 500 },
  );

/** A gateway on loopback: answers SOAP calls the way miniupnpd does, remembers what it got. */
async function withGateway(fn: (gw: Gateway, seen: string[]) => Promise<void>) {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (new URL(req.url).pathname !== "/ctl/IPConn") return new Response("?", { status: 404 });
    const action = req.headers.get("soapaction")?.replace(/^"[^#]*#(.*)"$/, "$1") ?? "";
    const body = await req.text();
    seen.push(`${req.method} ${new URL(req.url).pathname} ${action} ${body.length}`);
    if (action === "GetExternalIPAddress") {
      return answer(action, { NewExternalIPAddress: "11.42.0.254" });
    }
    if (action === "AddPortMapping") {
      return body.includes("<NewExternalPort>80<")
        ? fault(718, "ConflictInMappingEntry")
        : answer(action);
    }
    if (action === "DeletePortMapping") return fault(714, "NoSuchEntryInArray");
    if (action === "GetGenericPortMappingEntry") {
      if (!body.includes("<NewPortMappingIndex>0<")) {
        return fault(713, "SpecifiedArrayIndexInvalid");
      }
      return answer(action, {
        NewRemoteHost: "",
        NewExternalPort: 1194,
        NewProtocol: "UDP",
        NewInternalPort: 1194,
        NewInternalClient: "10.77.0.2",
        NewEnabled: 1,
        NewPortMappingDescription: "re6st",
        NewLeaseDuration: 3000,
      });
    }
    return new Response("not found", { status: 404 });
  });
  const { port } = server.addr;
  try {
    await fn({
      controlUrl: `http://127.0.0.1:${port}/ctl/IPConn`,
      serviceType: SERVICE,
      location: `http://127.0.0.1:${port}/rootDesc.xml`,
      localAddress: "10.77.0.2",
    }, seen);
  } finally {
    await server.shutdown();
  }
}

Deno.test("the client reads the external address, maps, lists and reports gateway errors", async () => {
  await withGateway(async (gw, seen) => {
    const m = createPortMapper();
    assert.equal(await m.externalAddress(gw), "11.42.0.254");
    await m.addMapping(gw, {
      protocol: "TCP",
      externalPort: 1194,
      internalPort: 1194,
      leaseS: 3600,
      description: "re6st",
    });
    assert.deepEqual(await m.listMappings(gw), [{
      protocol: "UDP",
      externalPort: 1194,
      internalPort: 1194,
      internalClient: "10.77.0.2",
      leaseS: 3000,
      description: "re6st",
      enabled: true,
    }]);
    const conflict = await m.addMapping(gw, {
      protocol: "TCP",
      externalPort: 80,
      internalPort: 1194,
      leaseS: 3600,
      description: "re6st",
    }).then(() => null, (e) => e);
    assert.ok(conflict instanceof UpnpError);
    assert.equal(conflict.code, 718);
    assert.equal(
      describeError(conflict),
      `UPnP AddPortMapping on gateway ${gw.controlUrl} failed: error 718 ConflictInMappingEntry`,
    );
    await assert.rejects(
      m.deleteMapping(gw, { protocol: "UDP", externalPort: 9 }),
      (e) => e instanceof UpnpError && e.code === 714 && e.action === "DeletePortMapping",
    );
    await assert.rejects(
      m.externalAddress({ ...gw, controlUrl: gw.controlUrl.replace("/ctl/IPConn", "/nothing") }),
      /UPnP GetExternalIPAddress on gateway http:\/\/127\.0\.0\.1:\d+\/nothing failed: HTTP 404/,
    );
    assert.deepEqual(seen.map((s) => s.split(" ").slice(0, 3).join(" ")), [
      "POST /ctl/IPConn GetExternalIPAddress",
      "POST /ctl/IPConn AddPortMapping",
      "POST /ctl/IPConn GetGenericPortMappingEntry",
      "POST /ctl/IPConn GetGenericPortMappingEntry",
      "POST /ctl/IPConn AddPortMapping",
      "POST /ctl/IPConn DeletePortMapping",
    ]);
  });
});

Deno.test("a gateway that does not answer fails the call after the time limit, naming it", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c);
  })();
  try {
    const gw: Gateway = {
      controlUrl: `http://127.0.0.1:${listener.addr.port}/ctl/IPConn`,
      serviceType: SERVICE,
      location: "",
      localAddress: "10.77.0.2",
    };
    await assert.rejects(
      createPortMapper({ callTimeoutMs: 200 }).externalAddress(gw),
      new RegExp(
        `^UpnpError: UPnP GetExternalIPAddress on gateway ${gw.controlUrl} failed: ` +
          `no answer from 127\\.0\\.0\\.1:${listener.addr.port} within 200 ms$`,
      ),
    );
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const c of held) c.close();
  }
});

Deno.test("a refused connection is reported with its cause", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  await assert.rejects(
    httpRequest(`http://127.0.0.1:${port}/`, "GET", {}, "", 1000),
    /refused/i,
  );
});
