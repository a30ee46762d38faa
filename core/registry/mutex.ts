// Serialises the registry's database writes across awaits.

/** A promise-chain mutex: runs the given functions one at a time, in call order. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  /** Runs `fn` once every earlier call finished; returns its result. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.catch(() => {});
    return result;
  }
}
