// Where the client resumes after a drop, without a server: a fake
// WebSocket replays the frames of a connection that caught up and then
// got a live push that overtook an older stored one still fanning out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimdClient } from '../timd.js';

/** FakeSocket records every socket the client opens; the test drives it. */
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = new URL(url);
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(f) {
    this.sent.push(JSON.parse(f));
  }
  close() {}
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(f) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

test('resumes from the last caughtup Seq, not from a live push that overtook an older one', async () => {
  FakeSocket.all = [];
  const c = new TimdClient({
    baseUrl: 'http://127.0.0.1:1',
    sdkAppId: 1400000000,
    identifier: 'u',
    userSig: 's',
    since: 2,
    WebSocket: FakeSocket,
    pingInterval: 0,
    backoff: { initial: 1, max: 1, jitter: 0 },
  });
  const pushes = [];
  const caught = [];
  c.on('push', (p) => pushes.push(p.TaskId));
  c.on('caughtup', (d) => caught.push(d.Seq));
  c.connect();
  await tick();
  const ws1 = FakeSocket.all[0];
  assert.equal(ws1.url.searchParams.get('since'), '2');
  ws1.open();
  ws1.frame({ Type: 'push', TaskId: 'a', Seq: 3 });
  ws1.frame({ Type: 'caughtup', Seq: 4 });
  assert.deepEqual(caught, [4]);
  assert.equal(c.lastSeq, 4);
  // Live: Seq 9 arrives while Seq 8 (stored, to this user too) is still
  // fanning out; then the network drops.
  ws1.frame({ Type: 'push', TaskId: 'i', Seq: 9 });
  assert.equal(c.lastSeq, 4);
  ws1.drop();
  await tick();
  const ws2 = FakeSocket.all[1];
  assert.ok(ws2, 'reconnected');
  // since=9 would skip Seq 8 for good.
  assert.equal(ws2.url.searchParams.get('since'), '4');
  ws2.open();
  // The server resends i (not yet acknowledged when the socket dropped)
  // after h, in Seq order; the client shows h, and i only once.
  ws2.frame({ Type: 'push', TaskId: 'h', Seq: 8 });
  ws2.frame({ Type: 'push', TaskId: 'i', Seq: 9 });
  ws2.frame({ Type: 'caughtup', Seq: 9 });
  assert.deepEqual(pushes, ['a', 'i', 'h']);
  assert.equal(c.lastSeq, 9);
  assert.deepEqual(caught, [4, 9]);
  // A caughtup frame never moves the resume point back, and a malformed
  // one is ignored.
  ws2.frame({ Type: 'caughtup', Seq: 5 });
  ws2.frame({ Type: 'caughtup', Seq: 'x' });
  assert.equal(c.lastSeq, 9);
  c.close();
});

test('connects with batch=1; a pushes message is each push in order, repeats dropped, acked in batches of 100', async () => {
  FakeSocket.all = [];
  const c = new TimdClient({
    baseUrl: 'http://127.0.0.1:1',
    sdkAppId: 1400000000,
    identifier: 'u',
    userSig: 's',
    WebSocket: FakeSocket,
    pingInterval: 0,
  });
  const pushes = [];
  c.on('push', (p) => pushes.push(p.TaskId));
  c.connect();
  await tick();
  const ws = FakeSocket.all[0];
  assert.equal(ws.url.searchParams.get('batch'), '1');
  ws.open();
  ws.frame({ Type: 'push', TaskId: 'live', Seq: 9 });
  assert.deepEqual(ws.sent, [{ Type: 'ack', TaskId: 'live' }]);
  ws.sent = [];
  const many = Array.from({ length: 150 }, (_, i) => ({ Type: 'push', TaskId: `t${i}`, Seq: 10 + i }));
  ws.frame({ Type: 'pushes', Pushes: [{ Type: 'push', TaskId: 'live', Seq: 9 }, ...many, { Type: 'revoke', TaskId: 'x' }] });
  assert.deepEqual(pushes, ['live', ...many.map((p) => p.TaskId)]);
  // Repeats are acknowledged again (the server resends only unacknowledged
  // pushes); anything but a push frame inside is ignored.
  const ids = ['live', ...many.map((p) => p.TaskId)];
  assert.deepEqual(ws.sent, [
    { Type: 'ack', TaskIds: ids.slice(0, 100) },
    { Type: 'ack', TaskIds: ids.slice(100) },
  ]);
  // A malformed pushes message is ignored.
  ws.sent = [];
  ws.frame({ Type: 'pushes', Pushes: 'x' });
  assert.deepEqual(ws.sent, []);
  c.close();
});

test('without autoAck a pushes message is delivered but not acknowledged', async () => {
  FakeSocket.all = [];
  const c = new TimdClient({
    baseUrl: 'http://127.0.0.1:1',
    sdkAppId: 1400000000,
    identifier: 'u',
    userSig: 's',
    WebSocket: FakeSocket,
    pingInterval: 0,
    autoAck: false,
  });
  const pushes = [];
  c.on('push', (p) => pushes.push(p.TaskId));
  c.connect();
  await tick();
  const ws = FakeSocket.all[0];
  ws.open();
  ws.frame({ Type: 'pushes', Pushes: [{ Type: 'push', TaskId: 'a', Seq: 1 }, { Type: 'push', TaskId: 'b', Seq: 2 }] });
  assert.deepEqual(pushes, ['a', 'b']);
  assert.deepEqual(ws.sent, []);
  c.close();
});
