// Map-reduce word count, as in Ray's "Simple MapReduce" example.
//
// These remote functions live in a module (not the entry script), so they may use the module's
// top-level names: `countWords` calls `partitionOf`. Workers import this module to run them.
import { remote } from 'miniray';

/** Which reducer a word goes to (a string hash, so every mapper agrees). */
function partitionOf(word: string, numPartitions: number): number {
  let hash = 0;
  for (let i = 0; i < word.length; i++) hash = (Math.imul(hash, 31) + word.charCodeAt(i)) | 0;
  return (hash >>> 0) % numPartitions;
}

/**
 * Map: counts the words of one chunk of text and splits the counts into `numPartitions` maps,
 * one per reducer. Use it with `.options({ numReturns: numPartitions })` so each partition
 * becomes an object of its own.
 */
export const countWords = remote((text: string, numPartitions: number): Map<string, number>[] => {
  const partitions = Array.from({ length: numPartitions }, () => new Map<string, number>());
  for (const word of text.split(' ')) {
    if (word === '') continue;
    const counts = partitions[partitionOf(word, numPartitions)]!;
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return partitions;
});

/** Reduce: adds up the counts one partition received from every mapper. */
export const mergeCounts = remote((...parts: Map<string, number>[]): Map<string, number> => {
  const total = new Map<string, number>();
  for (const part of parts) {
    for (const [word, count] of part) total.set(word, (total.get(word) ?? 0) + count);
  }
  return total;
});

const VOCABULARY = (
  'the of and to in is that it was for on are as with his they at be this from have or by one had ' +
  'not but what all were when we there can an your which their said if do will each about how up out ' +
  'them then she many some so these would other into has more her two like him see time could no make'
).split(' ');

/**
 * `numWords` words of text drawn from a small vocabulary with a skewed (Zipf-like) frequency,
 * from a seeded generator, so every run produces the same text. Runs in the driver.
 */
export function generateText(numWords: number, seed: number): string {
  let state = seed >>> 0;
  const words = new Array<string>(numWords);
  for (let i = 0; i < numWords; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const r = state / 4294967296;
    words[i] = VOCABULARY[Math.floor(VOCABULARY.length * r * r * r)]!;
  }
  return words.join(' ');
}
