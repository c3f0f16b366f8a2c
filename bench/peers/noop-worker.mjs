// The task Piscina and Tinypool run in the benchmark: a no-op that returns a small value, the same
// work as miniray's small_value. Plain JavaScript, so the pools' workers load no TypeScript hooks.
export default function noop() {
  return 'ok';
}
