// backoffDelay, without a server: growth, the cap and the jitter bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../timd.js';

const b = { initial: 500, max: 30000, factor: 2, jitter: 0.5 };

test('backoff grows by factor up to max, with the jitter share random', () => {
  const cases = [
    // attempt, random, want
    [0, 0, 250],
    [0, 1, 500],
    [1, 0, 500],
    [1, 1, 1000],
    [3, 0.5, 3000],
    [6, 1, 30000], // 32000 capped
    [6, 0, 15000],
    [100, 1, 30000],
  ];
  for (const [n, r, want] of cases) {
    assert.equal(backoffDelay(n, b, () => r), want, `attempt ${n}, random ${r}`);
  }
});

test('no jitter is exact; full jitter can be 0', () => {
  assert.equal(backoffDelay(2, { ...b, jitter: 0 }, () => 0.9), 2000);
  assert.equal(backoffDelay(2, { ...b, jitter: 1 }, () => 0), 0);
});

test('clients dropped together spread out', () => {
  const delays = new Set();
  for (let i = 0; i < 100; i++) delays.add(backoffDelay(4, b));
  assert.ok(delays.size > 50, `only ${delays.size} distinct delays of 100`);
  for (const d of delays) assert.ok(d >= 4000 && d <= 8000, `delay ${d}`);
});
