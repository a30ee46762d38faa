import assert from "node:assert/strict";
import { parseCommandLine } from "../../core/options/parser.ts";
import { REGISTRY_SPEC, toRegistryOptions } from "../../core/options/registry.ts";
import { RegistryConfigError, resolveRegistryConfig } from "../../core/registry/config.ts";

const noFiles = {
  cwd: "/",
  readTextFile: (): string => {
    throw new Error("no files");
  },
};

Deno.test("a registry config gets the same defaults as the command line", () => {
  const cli = toRegistryOptions(
    parseCommandLine(REGISTRY_SPEC, ["--ca", "/ca.crt", "--key", "/ca.key"], noFiles),
  );
  const { config: _, ...expected } = cli;
  assert.deepEqual(resolveRegistryConfig({ ca: "/ca.crt", key: "/ca.key" }), {
    ...expected,
    anonymousPrefixLength: 0,
  });
});

Deno.test("a registry config derives max_clients, adds origins and keeps same_country", () => {
  const r = resolveRegistryConfig({
    ca: "c",
    key: "k",
    clientCount: 4,
    authorizedOrigin: ["::1", "192.0.2.1"],
    sameCountry: ["FR"],
    ipv4: { network: "10.42.0.0/16", sublen: 8 },
    encrypt: true,
    dh: "",
  });
  assert.equal(r.maxClients, 8);
  assert.deepEqual(r.authorizedOrigin, ["127.0.0.1", "::1", "192.0.2.1"]);
  assert.deepEqual(r.sameCountry, ["FR"]);
  assert.deepEqual(r.ipv4, { network: "10.42.0.0/16", sublen: 8 });
  assert.equal(r.encrypt, true);
  assert.equal(r.dh, undefined);
  assert.deepEqual(resolveRegistryConfig(r), r, "resolving twice changes nothing");
});

Deno.test("a registry config out of the spec's ranges is refused naming the option", () => {
  const bad = (extra: object, pattern: RegExp) =>
    assert.throws(
      () => resolveRegistryConfig({ ca: "c", key: "k", ...extra }),
      (e: unknown) => e instanceof RegistryConfigError && pattern.test(e.message),
    );
  bad({ port: 70000 }, /--port: 70000 is out of range 0\.\.65535/);
  bad({ minProtocol: 11 }, /--min-protocol: 11 is out of range/);
  bad({ hello: 1.5 }, /--hello: invalid integer "1\.5"/);
  bad({ ipv4: { network: "10.42.0.0/30", sublen: 8 } }, /--ipv4: invalid bits per node/);
  bad({ key: "" }, /Missing --key/);
});
