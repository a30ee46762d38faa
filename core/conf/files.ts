// The file seam of `re6st conf`: read files, and replace them only once their new content is
// complete (temporary file + rename), so that a failed run never destroys an existing file.

/** A temporary file next to its target, waiting to replace it. */
export interface StagedFile {
  /** Writes `data`, flushes it and renames the temporary file over the target. */
  commit(data: string | Uint8Array): Promise<void>;
  /** Removes the temporary file; the target is left as it was. */
  discard(): Promise<void>;
}

/** What `re6st conf` needs from the file system. */
export interface ConfFiles {
  /** Contents of `path`, or null when it does not exist. */
  read(path: string): Promise<Uint8Array | null>;
  /** Creates folder `path` and its parents when missing. */
  ensureDir(path: string): Promise<void>;
  /** Creates a temporary file with permissions `mode` next to `path`, to replace it later. */
  stage(path: string, mode: number): Promise<StagedFile>;
}

/** One file held by memoryFiles. */
export interface MemoryFile {
  data: Uint8Array;
  mode: number;
}

/** An in-memory ConfFiles for tests; paths listed in `readOnly` cannot be staged. */
export function memoryFiles(
  initial: Record<string, string> = {},
): ConfFiles & { files: Map<string, MemoryFile>; readOnly: Set<string>; staged: Set<string> } {
  const enc = new TextEncoder();
  const files = new Map<string, MemoryFile>(
    Object.entries(initial).map(([p, t]) => [p, { data: enc.encode(t), mode: 0o644 }]),
  );
  const readOnly = new Set<string>();
  const staged = new Set<string>();
  return {
    files,
    readOnly,
    staged,
    read: (path) => Promise.resolve(files.get(path)?.data ?? null),
    ensureDir: () => Promise.resolve(),
    stage(path, mode) {
      if (readOnly.has(path)) {
        return Promise.reject(new Error(`Cannot write "${path}": permission denied`));
      }
      staged.add(path);
      return Promise.resolve({
        commit(data) {
          staged.delete(path);
          files.set(path, { data: typeof data === "string" ? enc.encode(data) : data, mode });
          return Promise.resolve();
        },
        discard() {
          staged.delete(path);
          return Promise.resolve();
        },
      });
    },
  };
}
