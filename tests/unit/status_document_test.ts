import assert from "node:assert/strict";
import {
  problems,
  reached,
  STATUS_JSON_SCHEMA,
  validateSchema,
} from "../../core/status/document.ts";
import { renderStatus } from "../../core/status/render.ts";
import { sampleStatus } from "../helpers/status_sample.ts";

Deno.test("a complete status document satisfies its schema", () => {
  assert.deepEqual(validateSchema(sampleStatus(), STATUS_JSON_SCHEMA), []);
});

Deno.test("the schema catches missing fields, wrong types and bad enums", () => {
  const doc = sampleStatus() as unknown as Record<string, unknown>;
  const broken = { ...doc, pid: "1234", state: "dancing" } as Record<string, unknown>;
  delete broken.identity;
  const errors = validateSchema(broken, STATUS_JSON_SCHEMA);
  assert.ok(errors.some((e) => e.startsWith("$.pid: expected integer")), errors.join("\n"));
  assert.ok(errors.some((e) => e.startsWith("$.state:")), errors.join("\n"));
  assert.ok(errors.includes("$.identity: missing"), errors.join("\n"));
});

Deno.test("a node with an established tunnel and routes has reached connected", () => {
  assert.deepEqual(reached(sampleStatus(), "connected"), { ok: true, missing: "" });
  const none = sampleStatus({ tunnels: [] });
  assert.deepEqual(reached(none, "connected"), { ok: false, missing: "no established tunnel" });
  const noReg = sampleStatus();
  noReg.registry.reachable = false;
  assert.equal(reached(noReg, "registry").ok, false);
  assert.equal(
    reached(sampleStatus({ state: "starting" }), "registry").missing,
    "node is starting",
  );
});

Deno.test("a dead child or babeld makes the node unhealthy", () => {
  assert.deepEqual(problems(sampleStatus()), []);
  const doc = sampleStatus();
  doc.children[1].state = "restarting";
  doc.babel.running = false;
  assert.deepEqual(problems(doc), [
    "babeld is not running",
    "openvpn-server tcp 1194 is restarting",
  ]);
});

Deno.test("the summary shows identity, tunnels and processes", () => {
  const text = renderStatus(sampleStatus());
  assert.match(text, /re6st node 6\/16 \(2001:db8:42:6::1\)/);
  assert.match(text, /client\s+1\/16\s+re6stnet1\s+tcp\s+192\.0\.2\.1:1194\s+30m\s+96/);
  assert.match(text, /babeld\s+2000\s+running/);
  assert.match(text, /memory {4}48\.0 MiB resident, JavaScript heap 7\.0 of 9\.0 MiB used/);
  assert.doesNotMatch(text, /UNHEALTHY/);
  const sick = sampleStatus({
    babel: { running: false, neighbours: [], routes: 0, knownNodes: 0 },
  });
  assert.match(renderStatus(sick), /UNHEALTHY: babeld is not running/);
});

Deno.test("the summary shows each UPnP mapping, or why there is none", () => {
  const mapped = sampleStatus({
    upnp: {
      state: "mapped",
      gateway: "http://10.77.0.1:5000/ctl/IPConn",
      externalIp: "11.42.0.254",
      mappings: [{
        protocol: "tcp",
        externalIp: "11.42.0.254",
        externalPort: 1194,
        internalClient: "10.77.0.2",
        internalPort: 1194,
        leaseEnd: "2026-12-06T18:40:00.000Z",
      }],
      lastError: null,
    },
  });
  assert.deepEqual(validateSchema(mapped, STATUS_JSON_SCHEMA), []);
  assert.match(
    renderStatus(mapped),
    /upnp {6}11\.42\.0\.254:1194\/tcp → 10\.77\.0\.2:1194 \(lease until 18:40\)/,
  );
  const none = sampleStatus({
    upnp: {
      state: "client-only",
      gateway: null,
      externalIp: null,
      mappings: [],
      lastError: "no UPnP gateway answered",
    },
  });
  assert.match(renderStatus(none), /upnp {6}client-only: no UPnP gateway answered/);
  assert.doesNotMatch(renderStatus(sampleStatus()), /upnp/);
});
