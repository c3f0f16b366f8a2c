/**
 * A timeout of any length. Node's setTimeout holds at most 2**31 - 1 ms (24.8 days): a longer
 * delay fires after 1 ms with only a warning, which made `get(ref, { timeoutMs: 2**31 })` time out
 * at once. Here a long delay is waited out in steps of at most that, and Infinity never fires.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `callback` once after `ms` (any number >= 0, or Infinity); the result cancels it. */
export function startTimeout(callback: () => void, ms: number): () => void {
  if (!(ms < Infinity)) return noop; // Infinity (and NaN, which options reject) never fire
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = (delay: number): void => {
    timer = setTimeout(() => {
      const left = deadline - Date.now();
      if (left > 0 && delay === MAX_TIMER_MS) arm(Math.min(left, MAX_TIMER_MS));
      else callback();
    }, delay);
  };
  arm(Math.min(Math.max(ms, 0), MAX_TIMER_MS));
  return () => clearTimeout(timer);
}

const noop = (): void => {};
