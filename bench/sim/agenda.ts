// The simulation's agenda: tasks by simulated time (ms), taken in time order.

/** Tasks to run at given times, earliest first. */
export class Agenda<T> {
  readonly #tasks = new Map<number, T[]>();
  /** The times that have tasks, as a binary min-heap. */
  readonly #times: number[] = [];

  /** Adds `task` at time `t`. */
  at(t: number, task: T): void {
    let list = this.#tasks.get(t);
    if (!list) {
      this.#tasks.set(t, list = []);
      heapPush(this.#times, t);
    }
    list.push(task);
  }

  /** The earliest time with tasks, if it is not after `until`, and its tasks (removed). */
  next(until: number): { t: number; tasks: T[] } | null {
    if (!this.#times.length || this.#times[0] > until) return null;
    const t = heapPop(this.#times);
    const tasks = this.#tasks.get(t) ?? [];
    this.#tasks.delete(t);
    return { t, tasks };
  }
}

function heapPush(h: number[], x: number): void {
  h.push(x);
  for (let i = h.length - 1; i > 0;) {
    const p = (i - 1) >> 1;
    if (h[p] <= h[i]) break;
    [h[p], h[i]] = [h[i], h[p]];
    i = p;
  }
}

function heapPop(h: number[]): number {
  const top = h[0];
  const last = h.pop()!;
  if (h.length) {
    h[0] = last;
    for (let i = 0;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && h[l] < h[m]) m = l;
      if (r < h.length && h[r] < h[m]) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
  }
  return top;
}
