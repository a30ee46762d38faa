import assert from "node:assert/strict";
import {
  addMappingArgs,
  findWanService,
  mappingEntry,
  soapFault,
  soapRequest,
  soapResponse,
  ssdpLocation,
  ssdpSearch,
  xmlEscape,
  xmlText,
  xmlUnescape,
} from "../../core/upnp/igd.ts";

// Texts as Debian's miniupnpd 2.3.1 sends them (device description trimmed of its vendor fields).
const SSDP_REPLY = [
  "HTTP/1.1 200 OK",
  "CACHE-CONTROL: max-age=120",
  "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1",
  "USN: uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b::urn:schemas-upnp-org:device:InternetGatewayDevice:1",
  "EXT:",
  "SERVER: Debian/6.1 UPnP/1.1 MiniUPnPd/2.3.1",
  "LOCATION: http://10.77.0.1:44925/rootDesc.xml",
  "",
  "",
].join("\r\n");

const service = (type: string, control: string) =>
  `<service><serviceType>urn:schemas-upnp-org:service:${type}</serviceType>` +
  `<serviceId>urn:upnp-org:serviceId:x</serviceId><SCPDURL>/x.xml</SCPDURL>` +
  `<controlURL>${control}</controlURL><eventSubURL>/evt/x</eventSubURL></service>`;

const DESCRIPTION = '<?xml version="1.0"?>\n' +
  '<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337"><specVersion><major>1</major>' +
  "<minor>1</minor></specVersion><device>" +
  "<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>" +
  `<serviceList>${service("Layer3Forwarding:1", "/ctl/L3F")}</serviceList><deviceList><device>` +
  "<deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>" +
  `<serviceList>${service("WANCommonInterfaceConfig:1", "/ctl/CmnIfCfg")}</serviceList>` +
  "<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>" +
  `<serviceList>${service("WANIPConnection:2", "/ctl/IPConn")}` +
  `${service("WANIPv6FirewallControl:1", "/ctl/IP6FCtl")}</serviceList>` +
  "</device></deviceList></device></deviceList>" +
  "<presentationURL>http://10.77.0.1/</presentationURL></device></root>";

const FAULT = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
  's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault>' +
  "<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>" +
  '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode>' +
  "<errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault>" +
  "</s:Body></s:Envelope>";

const envelope = (inner: string) =>
  '<?xml version="1.0"?>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
  `s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>${inner}</s:Body></s:Envelope>`;

Deno.test("an SSDP search asks for one target with the standard header lines", () => {
  assert.equal(
    ssdpSearch("urn:schemas-upnp-org:device:InternetGatewayDevice:1"),
    'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n' +
      "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n",
  );
});

Deno.test("the description URL comes from the LOCATION of a 200 answer only", () => {
  assert.equal(ssdpLocation(SSDP_REPLY), "http://10.77.0.1:44925/rootDesc.xml");
  assert.equal(
    ssdpLocation(SSDP_REPLY.replace("LOCATION", "Location")),
    "http://10.77.0.1:44925/rootDesc.xml",
  );
  assert.equal(ssdpLocation(SSDP_REPLY.replace("200 OK", "404 Not Found")), null);
  assert.equal(ssdpLocation("NOTIFY * HTTP/1.1\r\nLOCATION: http://x/\r\n\r\n"), null);
  assert.equal(ssdpLocation(SSDP_REPLY.replace("http://", "file://")), null);
});

Deno.test("the WAN connection service is found in nested devices, its control URL made absolute", () => {
  assert.deepEqual(findWanService(DESCRIPTION, "http://10.77.0.1:44925/rootDesc.xml"), {
    serviceType: "urn:schemas-upnp-org:service:WANIPConnection:2",
    controlUrl: "http://10.77.0.1:44925/ctl/IPConn",
  });
  const withBase = DESCRIPTION.replace(
    "<specVersion>",
    "<URLBase>http://10.0.0.1:80/igd/</URLBase><specVersion>",
  )
    .replace("/ctl/IPConn", "ctl/IPConn");
  assert.equal(
    findWanService(withBase, "http://10.77.0.1:44925/rootDesc.xml")?.controlUrl,
    "http://10.0.0.1/igd/ctl/IPConn",
  );
  const ppp = DESCRIPTION.replace("WANIPConnection:2", "WANPPPConnection:1");
  assert.equal(
    findWanService(ppp, "http://h:1/d.xml")?.serviceType,
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
  );
  const both = DESCRIPTION.replace(
    service("Layer3Forwarding:1", "/ctl/L3F"),
    service("WANPPPConnection:1", "/ppp"),
  );
  assert.equal(
    findWanService(both, "http://h:1/d.xml")?.controlUrl,
    "http://h:1/ctl/IPConn",
    "IP preferred",
  );
  assert.equal(
    findWanService(DESCRIPTION.replace("WANIPConnection:2", "WANIPConnection:9"), "http://h/"),
    null,
  );
});

Deno.test("a SOAP request names the action in SOAPAction and escapes its arguments", () => {
  const call = soapRequest(
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "AddPortMapping",
    addMappingArgs({
      protocol: "TCP",
      externalPort: 1194,
      internalPort: 1195,
      leaseS: 3600,
      description: "re6st <a&b>",
    }, "10.77.0.2"),
  );
  assert.equal(
    call.headers.SOAPAction,
    '"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"',
  );
  assert.match(
    call.body,
    /<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">/,
  );
  assert.match(
    call.body,
    /<NewRemoteHost><\/NewRemoteHost><NewExternalPort>1194<\/NewExternalPort><NewProtocol>TCP<\/NewProtocol><NewInternalPort>1195<\/NewInternalPort><NewInternalClient>10\.77\.0\.2<\/NewInternalClient><NewEnabled>1<\/NewEnabled><NewPortMappingDescription>re6st &lt;a&amp;b&gt;<\/NewPortMappingDescription><NewLeaseDuration>3600<\/NewLeaseDuration><\/u:AddPortMapping>/,
  );
});

Deno.test("SOAP answers: output arguments, empty answers, faults, and the wrong answer", () => {
  const ip = envelope(
    '<u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">' +
      "<NewExternalIPAddress>11.42.0.254</NewExternalIPAddress></u:GetExternalIPAddressResponse>",
  );
  assert.deepEqual(soapResponse(ip, "GetExternalIPAddress", ["NewExternalIPAddress"]), {
    NewExternalIPAddress: "11.42.0.254",
  });
  const empty = envelope('<u:AddPortMappingResponse xmlns:u="urn:x"/>');
  assert.deepEqual(soapResponse(empty, "AddPortMapping", []), {});
  assert.throws(
    () => soapResponse(empty, "DeletePortMapping", []),
    /not a DeletePortMappingResponse/,
  );
  assert.deepEqual(soapFault(FAULT), { code: 718, description: "ConflictInMappingEntry" });
  assert.equal(soapFault(ip), null);
  assert.equal(soapFault("<html>500</html>"), null);
});

Deno.test("a port mapping entry is read from GetGenericPortMappingEntry's arguments", () => {
  const out = {
    NewExternalPort: "1194",
    NewProtocol: "TCP",
    NewInternalPort: "1194",
    NewInternalClient: "10.77.0.2",
    NewEnabled: "1",
    NewPortMappingDescription: "re6st 6/16",
    NewLeaseDuration: "3460",
  };
  assert.deepEqual(mappingEntry(out), {
    protocol: "TCP",
    externalPort: 1194,
    internalPort: 1194,
    internalClient: "10.77.0.2",
    leaseS: 3460,
    description: "re6st 6/16",
    enabled: true,
  });
  assert.equal(mappingEntry({ ...out, NewProtocol: "udp" })?.protocol, "UDP");
  assert.equal(mappingEntry({ ...out, NewProtocol: "SCTP" }), null);
  assert.equal(mappingEntry({ ...out, NewExternalPort: "70000" }), null);
});

Deno.test("XML text: any namespace prefix, self-closing elements, entities and CDATA", () => {
  assert.equal(xmlText("<a:x>1</a:x>", "x"), "1");
  assert.equal(xmlText('<x attr="1"/>', "x"), "");
  assert.equal(xmlText("<xy>1</xy>", "x"), null);
  assert.equal(xmlUnescape("a &amp;&lt;&gt;&quot;&apos;&#65;&#x42;"), "a &<>\"'AB");
  assert.equal(xmlUnescape("<![CDATA[<b>]]>"), "<b>");
  assert.equal(xmlEscape(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
});
