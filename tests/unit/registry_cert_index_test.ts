// The registry's certificate index (core/registry/cert_index.ts): fields read from stored
// certificates, the index kept in the same transactions, its stamp, its rebuild, and query
// plans that never read the whole table per request.

import assert from "node:assert/strict";
import { cnFromPrefix } from "../../core/addressing.ts";
import { issueCertificate, issuedSubject, parseCertificate } from "../../core/cert.ts";
import { loadPrivateKey, spkiDer, toHex } from "../../core/crypto.ts";
import { allocatePrefix } from "../../core/registry/allocation.ts";
import { certFields, CertStore } from "../../core/registry/cert_index.ts";
import type { RegistryDb } from "../../core/registry/db.ts";
import { openDb } from "../helpers/registry.ts";
import {
  NODE1_CERT_PEM,
  NODE1_KEY_PEM,
  TEST_CA_CERT_PEM,
  TEST_CA_KEY_PEM,
} from "../helpers/vectors.ts";

const ca = parseCertificate(TEST_CA_CERT_PEM);
const spki = spkiDer(loadPrivateKey(NODE1_KEY_PEM));

function certPem(prefix: string, serial: number, subjectSerial: number, notAfterS: number) {
  return issueCertificate({
    ca,
    caKey: TEST_CA_KEY_PEM,
    subject: issuedSubject([], subjectSerial, cnFromPrefix(prefix)),
    publicKey: spki,
    serial,
    notBefore: new Date((notAfterS - 1000) * 1000),
    notAfter: new Date(notAfterS * 1000),
  }).pem;
}

/** Issues like the registry: allocate, take a serial and a subject serial, store. */
function issue(db: RegistryDb, store: CertStore, notAfterS: number): string {
  return db.tx(() => {
    const prefix = allocatePrefix(db, 16, "", 80);
    const pem = certPem(prefix, store.nextSerial(), store.subjectSerials.take(), notAfterS);
    store.store(prefix, null, pem);
    return prefix;
  });
}

Deno.test("reads serial, notAfter, subject serial and key of VECTORS §10 node 1", () => {
  const f = certFields(NODE1_CERT_PEM);
  const full = parseCertificate(NODE1_CERT_PEM);
  assert.equal(f.serial, 1n);
  assert.equal(f.subjectSerial, 0);
  assert.equal(f.notAfterS, full.notAfter.getTime() / 1000);
  assert.equal(toHex(f.spki), toHex(full.spki));
  assert.throws(() => certFields("garbage"), /No PEM/);
});

Deno.test("the index follows stores and removals, only once they commit", () => {
  const db = openDb();
  try {
    const store = new CertStore(db);
    store.load();
    const a = issue(db, store, 1000);
    const b = issue(db, store, 3000);
    const c = issue(db, store, 2000);
    assert.equal(store.size, 3);
    assert.deepEqual(store.get(b)?.subjectSerial, 1);
    assert.equal(store.bySerial(3n), c);
    assert.equal(store.bySerial(99n), undefined);
    assert.equal(store.firstExpiryS(), 1000);
    assert.deepEqual(store.expiredBy(2000).sort(), [a, c].sort());
    assert.throws(() =>
      db.tx(() => {
        store.remove(a);
        throw new Error("rolled back");
      })
    );
    assert.equal(store.size, 3);
    assert.ok(store.get(a), "a rolled-back removal keeps the certificate");
    assert.ok(store.subjectSerials.has(0));
    db.tx(() => store.remove(a));
    assert.equal(store.size, 2);
    assert.equal(store.get(a), undefined);
    assert.ok(!store.subjectSerials.has(0), "its subject serial is free again (§5.6)");
    assert.equal(store.subjectSerials.take(), 0);
  } finally {
    db.close();
  }
});

Deno.test("a stamped index is loaded as it is; one another registry wrote past is rebuilt", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/registry.db`;
  try {
    let db = openDb(path);
    let store = new CertStore(db);
    assert.deepEqual(store.load(), { unreadable: [], rebuilt: false });
    const a = issue(db, store, 5000);
    issue(db, store, 6000);
    db.close();

    db = openDb(path);
    store = new CertStore(db);
    assert.deepEqual(store.load(), { unreadable: [], rebuilt: false });
    assert.equal(store.size, 2);
    assert.deepEqual([store.subjectSerials.has(0), store.subjectSerials.has(1)], [true, true]);
    // Another registry (the reference) renews a certificate: the serial moves past the stamp.
    db.tx(() => {
      db.setConfig("serial", 3);
      db.sql.prepare("UPDATE cert SET cert = ? WHERE prefix = ?").run(
        certPem(a, 3, 0, 9000),
        a,
      );
    });
    db.close();

    db = openDb(path);
    store = new CertStore(db);
    assert.equal(store.load().rebuilt, true);
    assert.equal(store.bySerial(3n), a);
    assert.equal(store.firstExpiryS(), 6000);
    // It frees one (expiry clean-up): the counts differ.
    db.tx(() => db.sql.prepare("UPDATE cert SET cert = NULL WHERE prefix = ?").run(a));
    db.close();

    db = openDb(path);
    store = new CertStore(db);
    assert.equal(store.load().rebuilt, true);
    assert.equal(store.size, 1);
    // A stored certificate nobody can read is reported and never expires here.
    db.tx(() => {
      const p = allocatePrefix(db, 16, "", 80);
      db.sql.prepare("UPDATE cert SET cert = ? WHERE prefix = ?").run("not a certificate", p);
    });
    db.close();

    db = openDb(path);
    store = new CertStore(db);
    const loaded = store.load();
    assert.equal(loaded.unreadable.length, 1);
    assert.match(String(loaded.unreadable[0].error), /No PEM/);
    assert.equal(store.size, 1);
    assert.equal(store.firstExpiryS(), 6000);
    db.close();
    db = openDb(path);
    store = new CertStore(db);
    const again = store.load();
    assert.deepEqual([again.rebuilt, again.unreadable.length], [false, 1]);
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("per-request lookups use indexes, never a scan of the certificates", () => {
  const db = openDb();
  try {
    new CertStore(db);
    const plan = (sql: string, ...args: (string | number)[]) =>
      (db.sql.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[])
        .map((r) => r.detail).join("; ");
    assert.match(
      plan(
        `SELECT prefix FROM cert WHERE cert IS NULL AND email IS NULL
           AND substr(prefix, 1, ?) = ? AND length(prefix) BETWEEN ? AND ?
         ORDER BY length(prefix) DESC, prefix LIMIT 1`,
        0,
        "",
        0,
        16,
      ),
      /USING INDEX cert_free_blocks/,
    );
    assert.match(plan("SELECT prefix FROM cert_index WHERE serial = ?", 1), /cert_index_serial/);
    assert.match(
      plan("SELECT prefix FROM cert_index WHERE not_after <= ?", 1),
      /cert_index_expiry/,
    );
    assert.match(plan("SELECT min(not_after) AS t FROM cert_index"), /cert_index_expiry/);
    assert.match(
      plan("SELECT email, cert FROM cert WHERE prefix = ?", "0"),
      /USING INDEX sqlite_autoindex_cert_1/,
    );
  } finally {
    db.close();
  }
});
