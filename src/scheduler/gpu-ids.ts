/**
 * Which GPUs a task or actor holds (Ray's GPU IDs, CUDA_VISIBLE_DEVICES): the node counts GPUs as
 * an amount, and this pool says which ones. A whole GPU (or several) goes to one holder; a
 * fraction shares a GPU with other fractions up to 1, the fullest GPU first (as Ray packs them),
 * so that fractional work leaves whole GPUs free.
 */
const UNITS = 10_000;

export class GpuIdPool {
  /** Free units (1/10,000 GPU) of each GPU by ID. */
  private readonly free = new Map<number, number>();

  constructor(ids: readonly number[]) {
    for (const id of ids) this.free.set(id, UNITS);
  }

  get ids(): number[] {
    return [...this.free.keys()];
  }

  /** IDs for `amount` GPUs, taken; undefined when they are not free (the amount is checked elsewhere, so only fragmentation leads here). */
  take(amount: number): number[] | undefined {
    if (amount <= 0) return [];
    if (amount >= 1) {
      const count = Math.ceil(amount - 1e-9);
      const whole = [...this.free].filter(([, units]) => units === UNITS).map(([id]) => id);
      if (whole.length < count) return undefined;
      const ids = whole.slice(0, count);
      for (const id of ids) this.free.set(id, 0);
      return ids;
    }
    const units = Math.round(amount * UNITS);
    let best: [number, number] | undefined;
    for (const entry of this.free) if (entry[1] >= units && (best === undefined || entry[1] < best[1])) best = entry;
    if (best === undefined) return undefined;
    this.free.set(best[0], best[1] - units);
    return [best[0]];
  }

  /** Gives back what take(amount) returned. */
  give(ids: readonly number[], amount: number): void {
    const units = amount >= 1 ? UNITS : Math.round(amount * UNITS);
    for (const id of ids) {
      const now = this.free.get(id);
      if (now !== undefined) this.free.set(id, Math.min(UNITS, now + units));
    }
  }
}
