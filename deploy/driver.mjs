// The example driver of deploy/kubernetes/driver-job.yaml: joins the cluster named by
// MINIRAY_ADDRESS (with MINIRAY_AUTH_TOKEN, listening on MINIRAY_NODE_IP_ADDRESS), spreads tasks
// over its nodes, and prints what ran where. The image keeps it at /app/examples/driver.mjs.
import { get, init, nodes, remote, shutdown } from 'miniray';

await init();
const alive = (await nodes()).filter((node) => node.alive && !node.isDriver);
console.log(`miniray example: nodes alive: ${alive.length}`);

// A function defined here travels as its source, so it imports what it uses itself.
const square = remote(async (x) => {
  const { getRuntimeContext } = await import('miniray');
  const started = Date.now();
  while (Date.now() - started < 20); // a little work, so that the tasks spread
  return { square: x * x, nodeId: getRuntimeContext().nodeId };
});
const results = await get(Array.from({ length: 4 * alive.length }, (_, i) => square.options({ schedulingStrategy: 'SPREAD' }).remote(i)));
const sum = results.reduce((total, result) => total + result.square, 0);
const ranOn = new Set(results.map((result) => result.nodeId)).size;
console.log(`miniray example: ${results.length} tasks ran on ${ranOn} of them; the sum of their squares is ${sum}`);
console.log(`RESULT ${JSON.stringify({ nodes: alive.length, tasks: results.length, ranOn, sum })}`);
await shutdown();
