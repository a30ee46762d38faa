import assert from "node:assert/strict";
import { recordingIo } from "../../cmd/io.ts";
import { LogFile } from "../../platform/log_file.ts";

Deno.test("lines are appended to the file, its folder made, and SIGUSR1's reopen starts anew", () => {
  const dir = Deno.makeTempDirSync({ prefix: "re6st-logfile-" });
  try {
    const io = recordingIo();
    const path = `${dir}/sub/re6stnet.log`;
    const f = new LogFile(path, io, { mirror: false });
    f.write("one");
    Deno.renameSync(path, `${path}.1`);
    f.write("two"); // still the renamed file, as after logrotate
    assert.equal(f.reopen(), true);
    f.write("three");
    f.close();
    assert.equal(Deno.readTextFileSync(`${path}.1`), "one\ntwo\n");
    assert.equal(Deno.readTextFileSync(path), "three\n");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o640);
    assert.deepEqual(io.stderr, []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a full disk drops and counts lines, says so once, and never throws", () => {
  const io = recordingIo();
  const f = new LogFile("/dev/full", io, { mirror: false });
  try {
    for (let i = 0; i < 5; i++) f.write(`line ${i}`);
    assert.equal(f.dropped, 5);
    assert.equal(io.stderr.length, 1, io.stderr.join("\n"));
    assert.match(io.stderr[0], /^Cannot write log file "\/dev\/full": .*No space left on device/);
    assert.match(io.stderr[0], /dropping log lines until .* SIGUSR1 reopens it/);
    f.reopen();
    f.write("again");
    assert.equal(io.stderr.length, 2, "a reopened file that fails is reported again");
  } finally {
    f.close();
  }
});

Deno.test("a file that cannot be opened falls back to stderr, or throws when required", () => {
  const dir = Deno.makeTempDirSync({ prefix: "re6st-logfile-" });
  try {
    Deno.writeTextFileSync(`${dir}/file`, "");
    const path = `${dir}/file/re6stnet.log`; // a folder that is a file
    const io = recordingIo();
    const f = new LogFile(path, io);
    f.write("kept");
    assert.equal(io.stderr.length, 2);
    assert.match(
      io.stderr[0],
      /^Cannot open log file ".*\/file\/re6stnet\.log": .*; logging to stan/,
    );
    assert.equal(io.stderr[1], "kept");
    assert.equal(f.reopen(), false);
    assert.throws(() => new LogFile(path, io, { required: true }), /Cannot open log file/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test('"-" logs to standard error, and a failing stderr does not throw either', () => {
  const io = recordingIo();
  const f = new LogFile("-", io, { mirror: true });
  f.write("to stderr");
  assert.deepEqual(io.stderr, ["to stderr"]);
  const broken = new LogFile("-", {
    err: () => {
      throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    },
  });
  broken.write("lost");
  assert.equal(broken.toStderr, true);
});

Deno.test("reachesIo tells whether a line also goes to io.err: stderr, mirrored or no file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "re6st-logfile-" });
  const io = recordingIo();
  const plain = new LogFile(`${dir}/a.log`, io, { mirror: false });
  const mirrored = new LogFile(`${dir}/b.log`, io, { mirror: true });
  try {
    assert.equal(new LogFile("-", io, { mirror: false }).reachesIo, true);
    assert.equal(plain.reachesIo, false);
    assert.equal(mirrored.reachesIo, true);
    plain.close();
    assert.equal(plain.reachesIo, true, "a closed file writes to io.err");
  } finally {
    plain.close();
    mirrored.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
