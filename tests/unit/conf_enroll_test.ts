// runConf (`re6st conf`) against a fake registry behind a fake fetch and in-memory files.

import assert from "node:assert/strict";
import { runConf } from "../../core/conf/enroll.ts";
import { type ConfOptions } from "../../core/options/conf.ts";
import { memoryFiles } from "../../core/conf/files.ts";
import { sampleConfig } from "../../core/conf/sample.ts";
import {
  formatName,
  issueCertificate,
  issuedSubject,
  parseCertificate,
  parseCsr,
} from "../../core/cert.ts";
import { generateRsaKey, loadPrivateKey, modulusBits, spkiDer } from "../../core/crypto.ts";
import { UsageError } from "../../core/errors.ts";
import { recordingIo } from "../../cmd/io.ts";
import { recordingRunner } from "../../platform/runner.ts";
import { TEST_CA_CERT_PEM, TEST_CA_KEY_PEM } from "../helpers/vectors.ts";

const URL_ = "http://reg.example/";
const DIR = "/conf";
const CA = parseCertificate(TEST_CA_CERT_PEM);
const SHA1 = "sha1:966322ef2d6e533aaa1a331b5d34f42bf9a33a88";

function options(o: Partial<ConfOptions> = {}): ConfOptions {
  return {
    registry: URL_,
    isNeeded: false,
    caOnly: false,
    dir: DIR,
    req: [],
    anonymous: false,
    ...o,
  };
}

/** A fake registry: getCa, requestToken (records mails), requestCertificate (token "good"). */
function fakeRegistry(opts: { emptyAnswer?: boolean } = {}) {
  const calls: { method: string; params: URLSearchParams }[] = [];
  const mails: string[] = [];
  let serial = 0;
  const fetch = (input: string) => {
    const u = new URL(input);
    const method = u.pathname.slice(1);
    calls.push({ method, params: u.searchParams });
    if (method === "getCa") return Promise.resolve(new Response(TEST_CA_CERT_PEM));
    if (method === "requestToken") {
      mails.push(u.searchParams.get("email")!);
      return Promise.resolve(new Response(null, { status: 204 }));
    }
    assert.equal(method, "requestCertificate");
    const token = u.searchParams.get("token");
    if (opts.emptyAnswer || (token !== "" && token !== "good")) {
      return Promise.resolve(new Response(null, { status: 204 }));
    }
    const csr = parseCsr(u.searchParams.get("req")!);
    const now = new Date();
    const cert = issueCertificate({
      ca: CA,
      caKey: TEST_CA_KEY_PEM,
      subject: issuedSubject(csr.subject, serial, `${serial}/16`),
      publicKey: csr.spki,
      serial: ++serial,
      notBefore: now,
      notAfter: new Date(now.getTime() + 365 * 86400_000),
    });
    return Promise.resolve(new Response(cert.pem));
  };
  return { fetch, calls, mails };
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

Deno.test("anonymous enrollment writes the CA, a 0600 key sized like the CA, the certificate and a sample config", async () => {
  const reg = fakeRegistry();
  const files = memoryFiles();
  const io = recordingIo();
  const code = await runConf(options({ anonymous: true, fingerprint: SHA1 }), io, {
    files,
    fetch: reg.fetch,
  });
  assert.equal(code, 0);
  assert.equal(text(files.files.get("/conf/ca.crt")?.data), TEST_CA_CERT_PEM);
  const key = files.files.get("/conf/cert.key")!;
  assert.equal(key.mode, 0o600);
  assert.equal(modulusBits(loadPrivateKey(key.data)), 1024);
  const cert = parseCertificate(text(files.files.get("/conf/cert.crt")?.data));
  assert.deepEqual(cert.spki, spkiDer(loadPrivateKey(key.data)));
  assert.equal(text(files.files.get("/conf/re6stnet.conf")?.data), sampleConfig(URL_));
  const req = reg.calls.find((c) => c.method === "requestCertificate")!;
  assert.deepEqual([...req.params.keys()], ["token", "req", "location", "ip"]);
  assert.equal(req.params.get("token"), "");
  assert.ok(io.stdout.includes("Your subnet: 2001:db8:42::/64 (CN=0/16)"), io.stdout.join("\n"));
  assert.ok(io.stdout.some((l) => /^It will be renewed automatically after \d{4}-/.test(l)));
  assert.deepEqual(io.stderr, []);
  assert.equal(files.staged.size, 0);
});

Deno.test("without --fingerprint a warning gives the CA fingerprint", async () => {
  const io = recordingIo();
  await runConf(options({ anonymous: true }), io, {
    files: memoryFiles(),
    fetch: fakeRegistry().fetch,
  });
  assert.match(
    io.stderr.join("\n"),
    /WARNING: the CA certificate was not checked.*sha256:bb1b9103/,
  );
});

Deno.test("a wrong --fingerprint aborts before any file is written", async () => {
  const files = memoryFiles();
  const bad = "sha1:" + "00".repeat(20);
  await assert.rejects(
    runConf(options({ anonymous: true, fingerprint: bad }), recordingIo(), {
      files,
      fetch: fakeRegistry().fetch,
    }),
    /does not match --fingerprint sha1:0000.*got sha1:966322ef/,
  );
  assert.equal(files.files.size, 0);
});

Deno.test("a --fingerprint of the wrong length or algorithm is a usage error", async () => {
  for (const fp of ["sha256:966322ef2d6e533aaa1a331b5d34f42bf9a33a88", "nohash:00", "sha1"]) {
    const reg = fakeRegistry();
    await assert.rejects(
      runConf(options({ anonymous: true, fingerprint: fp }), recordingIo(), {
        files: memoryFiles(),
        fetch: reg.fetch,
      }),
      UsageError,
    );
    assert.equal(reg.calls.length, 0);
  }
});

Deno.test("--ca-only writes only ca.crt", async () => {
  const files = memoryFiles();
  const code = await runConf(options({ caOnly: true, fingerprint: SHA1 }), recordingIo(), {
    files,
    fetch: fakeRegistry().fetch,
  });
  assert.equal(code, 0);
  assert.deepEqual([...files.files.keys()], ["/conf/ca.crt"]);
});

Deno.test("an existing key is reused and the previous subject is kept without CN and serial", async () => {
  const keyPem = await generateRsaKey(1024);
  const reg = fakeRegistry();
  const first = memoryFiles({ "/conf/cert.key": keyPem });
  await runConf(
    options({ anonymous: true, req: [["O", "Old"], ["emailAddress", "a@b.c"]] }),
    recordingIo(),
    {
      files: first,
      fetch: reg.fetch,
    },
  );
  assert.equal(text(first.files.get("/conf/cert.key")!.data), keyPem);
  const previous = text(first.files.get("/conf/cert.crt")!.data);
  assert.equal(
    formatName(parseCertificate(previous).subject),
    "O=Old, emailAddress=a@b.c, serialNumber=0, CN=0/16",
  );

  const files = memoryFiles({ "/conf/cert.key": keyPem, "/conf/cert.crt": previous });
  await runConf(options({ anonymous: true, req: [["O", "New"], ["OU", ""]] }), recordingIo(), {
    files,
    fetch: reg.fetch,
  });
  const csr = parseCsr(
    reg.calls.filter((c) => c.method === "requestCertificate")[1].params.get("req")!,
  );
  assert.equal(formatName(csr.subject), "emailAddress=a@b.c, O=New");
  assert.deepEqual(csr.spki, spkiDer(loadPrivateKey(keyPem)));
});

Deno.test("an existing key of another size than the CA key is refused", async () => {
  const files = memoryFiles({ "/conf/cert.key": await generateRsaKey(1536) });
  const reg = fakeRegistry();
  await assert.rejects(
    runConf(options({ anonymous: true }), recordingIo(), { files, fetch: reg.fetch }),
    /has 1536 bits but the CA key has 1024/,
  );
  assert.ok(!reg.calls.some((c) => c.method === "requestCertificate"));
});

Deno.test("-r CN and -r serialNumber are refused before contacting the registry", async () => {
  for (const k of ["CN", "commonName", "serial", "serialNumber"]) {
    const reg = fakeRegistry();
    await assert.rejects(
      runConf(options({ anonymous: true, req: [[k, "x"]] }), recordingIo(), {
        files: memoryFiles(),
        fetch: reg.fetch,
      }),
      (e: Error) => e instanceof UsageError && /reserved/.test(e.message),
    );
    assert.equal(reg.calls.length, 0);
  }
});

Deno.test("asks for the e-mail and the token when they are missing", async () => {
  const reg = fakeRegistry();
  const files = memoryFiles();
  const io = recordingIo(["me@example.com", " good "]);
  const code = await runConf(options(), io, { files, fetch: reg.fetch });
  assert.equal(code, 0);
  assert.deepEqual(reg.mails, ["me@example.com"]);
  const req = reg.calls.find((c) => c.method === "requestCertificate")!;
  assert.equal(req.params.get("token"), "good");
  assert.ok(files.files.has("/conf/cert.crt"));
});

Deno.test("without a terminal it says how to retry with --token, and writes no certificate", async () => {
  const reg = fakeRegistry();
  const files = memoryFiles();
  await assert.rejects(
    runConf(options({ email: "me@example.com" }), recordingIo(), { files, fetch: reg.fetch }),
    /mail sent to me@example\.com arrives, run again with --token TOKEN/,
  );
  assert.deepEqual(reg.mails, ["me@example.com"]);
  assert.ok(!files.files.has("/conf/cert.crt"));
  await assert.rejects(
    runConf(options(), recordingIo(), { files: memoryFiles(), fetch: reg.fetch }),
    /--email ADDR/,
  );
});

Deno.test("an empty answer means an invalid token and leaves the existing files intact", async () => {
  const reg = fakeRegistry();
  const files = memoryFiles();
  await runConf(options({ anonymous: true }), recordingIo(), { files, fetch: reg.fetch });
  const before = new Map([...files.files].map(([p, f]) => [p, text(f.data)]));
  await assert.rejects(
    runConf(options({ token: "wrong" }), recordingIo(), { files, fetch: reg.fetch }),
    /Invalid or expired token/,
  );
  assert.deepEqual(new Map([...files.files].map(([p, f]) => [p, text(f.data)])), before);
  assert.equal(files.staged.size, 0);
});

Deno.test("an unwritable cert.crt fails before the token is spent", async () => {
  const reg = fakeRegistry();
  const files = memoryFiles();
  files.readOnly.add("/conf/cert.crt");
  await assert.rejects(
    runConf(options({ token: "good" }), recordingIo(), { files, fetch: reg.fetch }),
    /Cannot write "\/conf\/cert\.crt"/,
  );
  assert.ok(!reg.calls.some((c) => c.method === "requestCertificate"));
});

Deno.test("an existing re6stnet.conf is kept; --location is sent and gives the country", async () => {
  const reg = fakeRegistry();
  const kept = memoryFiles({ "/conf/re6stnet.conf": "mine\n" });
  await runConf(options({ anonymous: true, location: "FR,EU" }), recordingIo(), {
    files: kept,
    fetch: reg.fetch,
  });
  assert.equal(text(kept.files.get("/conf/re6stnet.conf")!.data), "mine\n");
  assert.equal(
    reg.calls.find((c) => c.method === "requestCertificate")!.params.get("location"),
    "FR,EU",
  );
  const fresh = memoryFiles();
  await runConf(options({ anonymous: true, location: "FR,EU" }), recordingIo(), {
    files: fresh,
    fetch: reg.fetch,
  });
  assert.match(
    text(fresh.files.get("/conf/re6stnet.conf")!.data),
    /^key cert\.key\ncountry FR\n#/m,
  );
  for (const [location, line] of [["fr,eu", /^country FR$/m], ["*,EU", /^#verbose/m]] as const) {
    const sample = memoryFiles();
    await runConf(options({ anonymous: true, location }), recordingIo(), {
      files: sample,
      fetch: reg.fetch,
    });
    const written = text(sample.files.get("/conf/re6stnet.conf")!.data);
    assert.match(written, line, location);
    if (location.startsWith("*")) assert.doesNotMatch(written, /^country/m, "no country *");
  }
});

Deno.test("the sample configuration has the §9.4 lines and only full-line comments", () => {
  const lines = sampleConfig("http://r/", "FR").split("\n");
  assert.deepEqual(lines.slice(0, 5), [
    "registry http://r/",
    "ca ca.crt",
    "cert cert.crt",
    "key cert.key",
    "country FR",
  ]);
  assert.ok(
    lines.includes("#verbose 3") && lines.includes("#ovpnlog") && lines.includes("#O--verb") &&
      lines.includes("#O3"),
  );
  assert.ok(lines.every((l) => l === "" || l.startsWith("#") || !l.includes("#")));
});

Deno.test("--is-needed exits 1 only when the route to the network leaves from inside it", async () => {
  const cases: [number, string, number][] = [
    [
      0,
      "2001:db8:42:: from :: dev re6stnet-x proto babel src 2001:db8:42:6::1 metric 1024 pref medium",
      1,
    ],
    [0, "2001:db8:42:: from :: via fe80::1 dev eth0 proto ra src 2001:db8:1::5 metric 100", 0],
    [2, "", 0],
  ];
  for (const [code, stdout, expected] of cases) {
    const runner = recordingRunner(() => ({ code, stdout }));
    const files = memoryFiles();
    const got = await runConf(options({ isNeeded: true, fingerprint: SHA1 }), recordingIo(), {
      files,
      fetch: fakeRegistry().fetch,
      runner,
    });
    assert.equal(got, expected, stdout);
    assert.deepEqual(runner.lines(), ["ip -6 -o route get 2001:db8:42::"]);
    assert.equal(files.files.size, 0);
  }
});
