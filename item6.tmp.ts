import { cancel, get, init, remote, shutdown } from 'miniray';
const infiniteSleep = remote(async (y: number) => {
  if (y) for (;;) await new Promise((r) => setTimeout(r, 100));
  return y;
});
let failures = 0;
for (let run = 0; run < Number(process.argv[2] ?? 10); run++) {
  await init({ numCpus: 1 });
  const first = infiniteSleep.remote(1);
  const sleepOrNo = Array.from({ length: 100 }, () => (Math.random() < 0.5 ? 1 : 0));
  const tasks = sleepOrNo.map((y) => infiniteSleep.remote(y));
  const cancelled = new Set<unknown>();
  for (const t of tasks) if (Math.random() > 0.5) { cancel(t, { force: true }); cancelled.add(t); }
  cancel(first, { force: true });
  let ok = true;
  try {
    for (const [i, t] of tasks.entries()) {
      if (sleepOrNo[i]) { cancel(t, { force: true }); cancelled.add(t); }
      if (cancelled.has(t)) { await get(t, { timeoutMs: 10_000 }).then(() => { throw new Error('not cancelled'); }, (e) => { if (!/cancel/i.test(String(e))) throw e; }); }
      else await get(t, { timeoutMs: 10_000 });
    }
  } catch (e) { ok = false; failures++; console.log('run', run, 'failed:', String(e).slice(0, 150)); }
  await shutdown();
}
console.log('failures', failures);
