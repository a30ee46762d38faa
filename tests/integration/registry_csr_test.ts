// Certificates OpenSSL can read (issue: CSR subjects were copied unchecked): a few hundred odd
// CSRs (attribute types, string types, encodings, control characters, versions) go to the
// registry; every certificate it issues must load with `openssl x509 -noout -text`, every CSR
// it refuses gets 400, and the cases that once produced unreadable certificates are refused.

import assert from "node:assert/strict";
import { rsaSign } from "../../core/crypto.ts";
import { bitString, integer, nullValue, oid, sequence, set, tlv, toPem } from "../../core/der.ts";
import { loadPrivateKey, spkiDer } from "../../core/crypto.ts";
import { localRegistry, nodeKeyPem, registryFiles, target } from "../helpers/registry.ts";

const SHA512_RSA = "1.2.840.113549.1.1.13";
const KNOWN = [
  "2.5.4.3", // CN
  "2.5.4.10", // O
  "2.5.4.11", // OU
  "2.5.4.6", // C
  "2.5.4.7", // L
  "2.5.4.5", // serialNumber
  "1.2.840.113549.1.9.1", // emailAddress
  "0.9.2342.19200300.100.1.25", // DC
  "2.5.4.12", // title
];
const UNKNOWN = ["1.2.3.4", "2.5.4.99", "1.3.6.1.4.1.99999.1"];
const TAGS = [0x0c, 0x13, 0x16, 0x14, 0x1e, 0x1c, 0x1a, 0x12, 0x04, 0x02];

const enc = new TextEncoder();
const bytes = (...b: number[]) => Uint8Array.from(b);
const CONTENTS: (() => Uint8Array)[] = [
  () => enc.encode("Example 1"),
  () => enc.encode("FR"),
  () => enc.encode("Zürich"),
  () => enc.encode("a@example.com"),
  () => new Uint8Array(0),
  () => enc.encode("nul\u0000inside"),
  () => enc.encode("line\r\nbreak"),
  () => enc.encode("esc\u001b[2J"),
  () => enc.encode("vt\u000bff\u000c"),
  () => enc.encode("nel\u0085"),
  () => enc.encode("del\u007f"),
  () => bytes(0x00, 0x41, 0x00), // odd-length BMPString
  () => bytes(0x00, 0x41, 0x00, 0x42), // "AB" in BMPString
  () => bytes(0xd8, 0x00, 0x00, 0x41), // lone surrogate in BMPString
  () => bytes(0x00, 0x00, 0x00, 0x41), // "A" in UniversalString
  () => bytes(0x00, 0x11, 0x00, 0x00), // beyond U+10FFFF
  () => bytes(0xc3, 0x28), // invalid UTF-8
  () => bytes(0xe9, 0x74, 0xe9), // Latin-1 "été"
  () => enc.encode("star*under_score"),
];

/** A deterministic PRNG (mulberry32), so that a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function csrPem(keyPem: string, name: Uint8Array, version = 0): string {
  const info = sequence(integer(version), name, spkiDer(loadPrivateKey(keyPem)), tlv(0xa0));
  return toPem(
    "CERTIFICATE REQUEST",
    sequence(info, sequence(oid(SHA512_RSA), nullValue()), bitString(rsaSign(keyPem, info))),
  );
}

const atv = (o: string, tag: number, content: Uint8Array) => sequence(oid(o), tlv(tag, content));

/** An attribute a real CSR could carry: its usual string type and plain text. */
function plausible(o: string, rnd: () => number): Uint8Array {
  if (o === "2.5.4.6") return atv(o, 0x13, enc.encode(rnd() < 0.5 ? "FR" : "DE"));
  if (o === "2.5.4.5") return atv(o, 0x13, enc.encode(String(Math.floor(rnd() * 1000))));
  if (o.startsWith("1.2.840") || o.startsWith("0.9")) {
    return atv(o, 0x16, enc.encode("a@x.example"));
  }
  const texts = [["Zürich", 0x0c], ["Example Org", 0x13], ["R&D", 0x0c]] as const;
  const [text, tag] = texts[Math.floor(rnd() * texts.length)];
  if (rnd() < 0.2) return atv(o, 0x1e, bytes(...[...text].flatMap((c) => [0, c.charCodeAt(0)])));
  return atv(o, tag, enc.encode(text));
}

function randomName(rnd: () => number): Uint8Array {
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  const rdns: Uint8Array[] = [];
  for (let i = 1 + Math.floor(rnd() * 3); i > 0; i--) {
    let value: Uint8Array;
    if (rnd() < 0.75) {
      value = plausible(pick(KNOWN), rnd);
    } else {
      const o = rnd() < 0.7 ? pick(KNOWN) : pick(UNKNOWN);
      value = atv(o, pick(TAGS), pick(CONTENTS)());
    }
    rdns.push(rnd() < 0.1 ? set(value, atv("2.5.4.11", 0x0c, enc.encode("unit"))) : set(value));
  }
  return sequence(...rdns);
}

async function opensslLoads(pem: string, dir: string, i: number): Promise<string | null> {
  const path = `${dir}/cert-${i}.pem`;
  await Deno.writeTextFile(path, pem);
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-noout", "-text", "-in", path],
    stdout: "null",
    stderr: "piped",
  }).output();
  return out.code === 0 ? null : new TextDecoder().decode(out.stderr).trim();
}

Deno.test("every certificate issued for odd CSRs loads in OpenSSL; refused ones get 400", async () => {
  const files = await registryFiles();
  const local = localRegistry(files);
  const keyPem = await nodeKeyPem(0);
  const seed = 20261206;
  const rnd = prng(seed);
  try {
    const cases: { what: string; pem: string; mustRefuse?: boolean }[] = [
      { what: "empty subject", pem: csrPem(keyPem, sequence()) },
      {
        what: "odd-length BMPString",
        pem: csrPem(keyPem, sequence(set(atv("2.5.4.3", 0x1e, bytes(0, 0x41, 0))))),
        mustRefuse: true,
      },
      { what: "version 99", pem: csrPem(keyPem, sequence(), 99), mustRefuse: true },
      {
        what: "two CSRs in one PEM",
        pem: csrPem(keyPem, sequence()) + csrPem(keyPem, sequence()),
        mustRefuse: true,
      },
      {
        what: "NUL in a PrintableString",
        pem: csrPem(keyPem, sequence(set(atv("2.5.4.10", 0x13, enc.encode("a\u0000b"))))),
        mustRefuse: true,
      },
      {
        what: "CR/LF in an attribute value",
        pem: csrPem(keyPem, sequence(set(atv("2.5.4.10", 0x0c, enc.encode("a\r\nCN=x"))))),
        mustRefuse: true,
      },
    ];
    for (let i = 0; i < 300; i++) {
      const version = rnd() < 0.05 ? [1, 2, 99][Math.floor(rnd() * 3)] : 0;
      cases.push({
        what: `random #${i} (seed ${seed})`,
        pem: csrPem(keyPem, randomName(rnd), version),
      });
    }
    const accepted: { what: string; pem: string }[] = [];
    let refused = 0;
    for (const c of cases) {
      const r = await local.rpc(target("requestCertificate", [["token", ""], ["req", c.pem]]));
      if (r.status === 200) {
        assert.ok(!c.mustRefuse, `${c.what} was accepted`);
        accepted.push({ what: c.what, pem: new TextDecoder().decode(r.bodyBytes) });
      } else {
        assert.equal(r.status, 400, `${c.what}: ${r.note}`);
        refused++;
      }
    }
    assert.ok(
      accepted.length >= 50 && refused >= 50,
      `${accepted.length} accepted, ${refused} refused`,
    );
    for (let i = 0; i < accepted.length; i += 8) {
      const batch = accepted.slice(i, i + 8);
      const errors = await Promise.all(batch.map((a, j) => opensslLoads(a.pem, files.dir, i + j)));
      errors.forEach((e, j) => assert.equal(e, null, `${batch[j].what}: OpenSSL cannot load it`));
    }
  } finally {
    await local.close();
    await files.cleanup();
  }
});
