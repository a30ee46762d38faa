// Real-file-system implementation of the `re6st conf` file seam (core/conf/files.ts).

import { basename, dirname, join } from "node:path";
import type { ConfFiles, StagedFile } from "../core/conf/files.ts";
import { describeError } from "../core/errors.ts";

/** ConfFiles on the real file system: temporary file in the target's folder, then rename. */
export function realConfFiles(): ConfFiles {
  return {
    async read(path) {
      try {
        return await Deno.readFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw new Error(`Cannot read "${path}": ${describeError(e)}`, { cause: e });
      }
    },
    async ensureDir(path) {
      try {
        await Deno.mkdir(path, { recursive: true });
      } catch (e) {
        throw new Error(`Cannot create folder "${path}": ${describeError(e)}`, { cause: e });
      }
    },
    async stage(path, mode): Promise<StagedFile> {
      const rnd = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
      const tmp = join(dirname(path), `.${basename(path)}.${Deno.pid}.${rnd}.tmp`);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(tmp, { write: true, createNew: true, mode });
        await Deno.chmod(tmp, mode); // exact mode, whatever the umask
      } catch (e) {
        throw new Error(`Cannot write "${path}": ${describeError(e)}`, { cause: e });
      }
      let open = true;
      const close = () => {
        if (open) file.close();
        open = false;
      };
      return {
        async commit(data) {
          try {
            const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
            for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
            await file.sync();
            close();
            await Deno.rename(tmp, path);
          } catch (e) {
            close();
            await Deno.remove(tmp).catch(() => {});
            throw new Error(`Cannot write "${path}": ${describeError(e)}`, { cause: e });
          }
        },
        async discard() {
          close();
          await Deno.remove(tmp).catch(() => {});
        },
      };
    },
  };
}
