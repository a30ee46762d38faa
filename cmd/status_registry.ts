import type { StatusOptions } from "../core/options/status.ts";
import { notYet } from "./common.ts";
import type { Io } from "./io.ts";

/** `re6st status --registry URL`: the network as the registry sees it. */
export function registryStatus(_opts: StatusOptions, io: Io): Promise<number> {
  return Promise.resolve(notYet(io, "re6st status --registry"));
}
