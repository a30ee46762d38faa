// The registry with GEOIP2_MMDB over HTTP on loopback (PROTOCOL.md §4.6, §5.4, §7.11): a
// MaxMind DB written by tests/helpers/mmdb.ts, read by the real reader; communities chosen by
// `re6st conf --location` or by the node's address; getCountry; --same-country; bad files.

import assert from "node:assert/strict";
import { join } from "node:path";
import { prefixFromCn } from "../../core/addressing.ts";
import { parseCertificate } from "../../core/cert.ts";
import { loadPrivateKey } from "../../core/crypto.ts";
import { runConf } from "../../core/conf/enroll.ts";
import { memoryLogger } from "../../core/log.ts";
import { decodeNetworkConfig } from "../../core/netconfig/document.ts";
import { RegistryClient, RegistryError } from "../../core/registry/client.ts";
import { startRegistry } from "../../cmd/registry_daemon.ts";
import { recordingIo } from "../../cmd/io.ts";
import { main } from "../../main.ts";
import { realConfFiles } from "../../platform/files.ts";
import { nodeCsr, registryFiles } from "../helpers/registry.ts";
import { writeTestGeoIp } from "../helpers/mmdb.ts";

/** The communities of VECTORS.md §13.3. */
const COMMUNITIES = "# example\n000 *\n001 @AS AU\n010 FR DE IT\n";

/** Runs `fn` with GEOIP2_MMDB set to `path` (unset when null), restoring it after. */
async function withGeoIpEnv<T>(path: string | null, fn: () => Promise<T>): Promise<T> {
  const before = Deno.env.get("GEOIP2_MMDB");
  if (path === null) Deno.env.delete("GEOIP2_MMDB");
  else Deno.env.set("GEOIP2_MMDB", path);
  try {
    return await fn();
  } finally {
    if (before === undefined) Deno.env.delete("GEOIP2_MMDB");
    else Deno.env.set("GEOIP2_MMDB", before);
  }
}

Deno.test("with GEOIP2_MMDB, nodes land in the community of their --location or address, and getCountry answers", async () => {
  const files = await registryFiles({ prefixLength: 13, anonymousPrefixLength: 13 });
  await Deno.writeTextFile(`${files.dir}/communities`, COMMUNITIES);
  const mmdb = await writeTestGeoIp(files.dir);
  const log = memoryLogger(3);
  const reg = await withGeoIpEnv(mmdb, () =>
    startRegistry(
      { ...files.config, community: `${files.dir}/communities`, sameCountry: ["FR"] },
      { log, openRelaySocket: () => null },
    ));
  try {
    assert.ok(
      log.lines.some((l) => l.includes(`GeoIP database "${mmdb}" (re6st-Test-Country`)),
      log.lines.join("\n"),
    );
    const url = `http://127.0.0.1:${reg.port}/`;
    // re6st conf --location: the first node (FR) becomes the registry node, in community 010.
    const dir = `${files.dir}/conf`;
    const io = recordingIo();
    const code = await runConf(
      {
        registry: url,
        isNeeded: false,
        caOnly: false,
        dir,
        req: [],
        anonymous: true,
        location: "FR,EU",
      },
      io,
      { files: realConfFiles() },
    );
    assert.equal(code, 0, io.stderr.join("\n"));
    const first = parseCertificate(await Deno.readTextFile(join(dir, "cert.crt")));
    assert.equal(first.cn, "16384/16", "community 010 (country FR)");
    assert.match(await Deno.readTextFile(join(dir, "re6stnet.conf")), /^country FR$/m);
    const anon = new RegistryClient(url);
    const cnOf = async (location: string, ip = "", i = 1) =>
      parseCertificate((await anon.requestCertificate("", (await nodeCsr(i)).csr, location, ip))!)
        .cn;
    assert.equal(await cnOf("jp,as"), "8192/16", "community 001 by continent @AS");
    assert.equal(await cnOf("", "192.0.2.10"), "8193/16", "address in AU: community 001");
    assert.equal(await cnOf("", "2001:db8:f00f::5"), "16385/16", "address in DE: 010");
    assert.equal(await cnOf("", "198.51.100.200"), "0/16", "continent EU alone: default");
    assert.equal(await cnOf("", ""), "1/16", "127.0.0.1 is nowhere: default community");
    assert.ok(log.lines.some((l) => /Issued certificate 8193\/16 .*"001" for AU,@OC/.test(l)));
    await assert.rejects(
      async () => anon.requestCertificate("", (await nodeCsr(2)).csr, "France"),
      (e) => e instanceof RegistryError && e.status === 400,
    );
    assert.ok(log.lines.some((l) => / requestCertificate 400 .*"France" is not CC,CONT/.test(l)));
    // getCountry, as the node with the first certificate.
    const node = new RegistryClient(url, {
      identity: {
        prefix: prefixFromCn(first.cn!),
        key: loadPrivateKey(await Deno.readTextFile(join(dir, "cert.key"))),
        ca: files.caPem,
      },
    });
    assert.equal(await node.getCountry("203.0.113.9"), "FR");
    assert.equal(await node.getCountry("::ffff:198.51.100.3"), "JP");
    assert.equal(await node.getCountry("10.1.2.3"), null, "204: unknown");
    await assert.rejects(
      () => node.getCountry("registry.example"),
      (e) => e instanceof RegistryError && e.status === 400,
    );
    assert.ok(log.lines.some((l) => / getCountry 400 .*is not an IP address/.test(l)));
    const params = await decodeNetworkConfig(
      await node.getNetworkConfig(),
      loadPrivateKey(await Deno.readTextFile(join(dir, "cert.key"))),
    );
    assert.deepEqual(params.same_country, ["FR"]);
  } finally {
    await reg.stop();
    await files.cleanup();
  }
});

Deno.test("an unusable GEOIP2_MMDB, or --same-country without one, stops the registry at start in one line", async () => {
  const files = await registryFiles();
  const c = files.config;
  const args = [
    ...["--ca", c.ca, "--key", c.key, "--db", c.db!, "--logfile", c.logfile!],
    ...["--port", "0", "-4", "127.0.0.1", "-6", ""],
  ];
  const run = async (mmdb: string | null, extra: string[] = []) => {
    const io = recordingIo();
    const code = await withGeoIpEnv(mmdb, () => main(["registry", ...args, ...extra], io));
    return { code, stderr: io.stderr };
  };
  try {
    const garbage = `${files.dir}/garbage.mmdb`;
    await Deno.writeTextFile(garbage, "FR 203.0.113.0/24\n");
    for (
      const [mmdb, why] of [
        [`${files.dir}/missing.mmdb`, /No such file or directory/],
        [garbage, /not a MaxMind DB file/],
        [files.dir, /Is a directory/],
      ] as const
    ) {
      const r = await run(mmdb);
      assert.equal(r.code, 1, mmdb);
      assert.equal(r.stderr.length, 1, r.stderr.join("\n"));
      assert.match(
        r.stderr[0],
        new RegExp(
          `Cannot start the registry: Cannot use the GeoIP database "${mmdb}" ` +
            `\\(GEOIP2_MMDB\\): `,
        ),
      );
      assert.match(r.stderr[0], why);
    }
    const refused = await run(null, ["--same-country", "FR"]);
    assert.equal(refused.code, 1);
    assert.deepEqual(refused.stderr.length, 1, refused.stderr.join("\n"));
    assert.match(
      refused.stderr[0],
      /Cannot start the registry: --same-country FR needs a GeoIP database: set GEOIP2_MMDB/,
    );
    const log = await Deno.readTextFile(c.logfile!);
    assert.doesNotMatch(log, /Registry listening/, "nothing was served");
  } finally {
    await files.cleanup();
  }
});
