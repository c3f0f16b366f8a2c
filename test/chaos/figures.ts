/**
 * Shared by the chaos checks: how much load to apply (the bounded CI run, or ten times that with
 * `npm run test:chaos -- --long`), and one way to print what each check measured, so that the
 * figures of a run can be read off its output (and quoted in notes).
 */
export const LONG = process.env.MINIRAY_CHAOS_LONG === '1';

/** `n` in the bounded run, `10 * n` in the soak run. */
export function scaled(n: number): number {
  return LONG ? n * 10 : n;
}

/** Prints one line: `chaos <check>: key=value key=value ...`. */
export function report(check: string, figures: Record<string, number | string | boolean>): void {
  const parts = Object.entries(figures).map(([key, value]) => `${key}=${value}`);
  console.log(`chaos ${check}: ${parts.join(' ')}`);
}
