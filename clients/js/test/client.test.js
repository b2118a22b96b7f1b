// The client against a real timd binary (see harness.js).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TimdClient, TimdError } from '../timd.js';
import { Timd, Proxy, waitFor } from './lib/harness.js';

/** @type {Timd} */
let timd;
const clients = [];

before(async () => {
  timd = await Timd.start();
});

after(async () => {
  for (const c of clients) c.close();
  await timd?.stop();
});

/** user imports a fresh account and returns a client for it (not connected). */
async function user(id, opts = {}) {
  await timd.importAccount(id);
  const c = new TimdClient({
    baseUrl: timd.base,
    sdkAppId: timd.app,
    identifier: id,
    userSig: await timd.sig(id),
    backoff: { initial: 50, max: 500 },
    ...opts,
  });
  clients.push(c);
  return c;
}

/** record collects a client's events by type. */
function record(c) {
  const r = { push: [], revoke: [], state: [], error: [], kicked: [], caughtup: [] };
  for (const t of Object.keys(r)) c.on(t, (d) => r[t].push(d));
  return r;
}

test('connects and receives a push sent through REST', async () => {
  const c = await user('js_alice');
  const ev = record(c);
  c.connect();
  await waitFor(() => c.state === 'open', 'open');
  await waitFor(() => ev.caughtup.length === 1, 'the end of catch-up');
  const resume = c.lastSeq;
  assert.equal(ev.caughtup[0].Seq, resume);
  const id = await timd.pushAll('hello from REST');
  const p = await waitFor(() => ev.push.find((p) => p.TaskId === id), 'the push');
  assert.equal(p.Type, 'push');
  assert.equal(p.From_Account, timd.admin);
  assert.deepEqual(p.MsgBody, [{ MsgType: 'TIMTextElem', MsgContent: { Text: 'hello from REST' } }]);
  assert.ok(Number.isSafeInteger(p.Seq) && p.Seq > resume);
  // A live push is no resume point: lastSeq stays where catch-up ended.
  assert.equal(c.lastSeq, resume);
  assert.deepEqual(ev.error, []);
  assert.deepEqual(
    ev.state.map((s) => s.state),
    ['connecting', 'open'],
  );
  c.close();
  assert.equal(c.state, 'closed');
});

test('ack and click show in all_member_push_statistics', async () => {
  const a = await user('js_ack_a', { autoAck: false });
  const b = await user('js_ack_b', { autoAck: false });
  const ea = record(a);
  const eb = record(b);
  a.connect();
  b.connect();
  await waitFor(() => a.state === 'open' && b.state === 'open', 'both open');
  const id = await timd.pushTo(['js_ack_a', 'js_ack_b'], 'count me');
  await waitFor(() => ea.push.length && eb.push.length, 'both pushes');
  // Nothing acknowledged yet: without autoAck the client sends nothing.
  assert.equal((await timd.stats(id)).DeliveredCount, 0);
  a.ack(id);
  b.click(id);
  b.click(id); // a repeat counts once
  const s = await waitFor(async () => {
    const s = await timd.stats(id);
    return s.DeliveredCount === 2 && s.ClickCount === 1 && s;
  }, 'Delivered 2, Clicked 1');
  assert.equal(s.TaskID, id);
  assert.throws(() => a.ack(''), TypeError);
  assert.throws(() => a.click('x'.repeat(129)), TypeError);
  assert.throws(() => a.ack(42), TypeError);
});

test('autoAck acknowledges every push', async () => {
  const c = await user('js_autoack');
  const ev = record(c);
  c.connect();
  await waitFor(() => c.state === 'open', 'open');
  const id = await timd.pushTo(['js_autoack'], 'auto');
  await waitFor(() => ev.push.length, 'the push');
  await waitFor(async () => (await timd.stats(id)).DeliveredCount === 1, 'Delivered');
});

test('catch-up comes batched (batch=1): each push once, in Seq order, acknowledged in one batched ack', async () => {
  const id = 'js_batch';
  await timd.importAccount(id);
  // The earlier tests' clients are done: closed, they acknowledge nothing
  // of these pushes to everyone, so the counts below are this client's.
  for (const c of clients) c.close();
  const stored = [];
  for (let i = 0; i < 3; i++) stored.push(await timd.pushAll(`stored ${i}`));
  // Record the types of the messages the socket receives.
  const types = [];
  class Recording extends WebSocket {
    constructor(url) {
      super(url);
      this.addEventListener('message', (m) => types.push(JSON.parse(m.data).Type));
    }
  }
  const c = await user(id, { WebSocket: Recording });
  // Once stored (readable by sync), they are catch-up's, not live.
  const mine = async () => (await c.sync({ limit: 200 })).pushes.filter((p) => stored.includes(p.TaskId));
  await waitFor(async () => (await mine()).length === 3, 'the pushes stored');
  const ev = record(c);
  c.connect();
  await waitFor(() => ev.caughtup.length === 1, 'the end of catch-up');
  assert.deepEqual(types, ['pushes', 'caughtup']);
  assert.deepEqual(
    ev.push.map((p) => p.TaskId),
    stored,
  );
  assert.ok(ev.push.every((p) => p.Type === 'push'));
  for (const t of stored) {
    await waitFor(async () => (await timd.stats(t)).DeliveredCount === 1, `Delivered for ${t}`);
  }
});

test('reconnects after the connection drops, resuming where catch-up ended, with no duplicates or gaps, in Seq order', async () => {
  const proxy = await Proxy.start(timd.addr);
  try {
    const c = await user('js_drop', { baseUrl: proxy.base, autoAck: false });
    const ev = record(c);
    // Count the push frames the first socket delivers, before the
    // client's own de-duplication.
    let raw = 0;
    c.connect();
    await waitFor(() => c.state === 'open', 'open');
    c._ws.addEventListener('message', (m) => (raw += JSON.parse(m.data).Type === 'push' ? 1 : 0));
    await waitFor(() => ev.caughtup.length === 1, 'the first catch-up');
    const resume = c.lastSeq;
    const before = [await timd.pushAll('before 1'), await timd.pushAll('before 2')];
    await waitFor(() => ev.push.length === 2, 'two pushes');
    // Live pushes do not move the resume point.
    assert.equal(c.lastSeq, resume);
    assert.ok(ev.push.every((p) => p.Seq > resume));

    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => c.state === 'reconnecting', 'reconnecting');
    const during = [];
    for (let i = 0; i < 5; i++) during.push(await timd.pushAll(`during ${i}`));
    // The client comes back while these may still be fanning out: the
    // server holds a live push for a connection still catching up, so
    // they arrive oldest first all the same.
    proxy.refuse(false);

    await waitFor(() => ev.push.length === 7, 'seven pushes', 60000);
    await waitFor(() => c.state === 'open', 'open again');
    await waitFor(() => ev.caughtup.length >= 2, 'the second catch-up');
    assert.equal(c.lastSeq, ev.push[6].Seq);
    const after = await timd.pushAll('after');
    await waitFor(() => ev.push.length === 8, 'eight pushes');

    const ids = ev.push.map((p) => p.TaskId);
    assert.deepEqual(ids, [...before, ...during, after]);
    assert.equal(new Set(ids).size, ids.length);
    const seqs = ev.push.map((p) => p.Seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.ok(proxy.accepted >= 2, 'a second connection was made');
    // The first socket gave each of its two pushes once. (The second may
    // give them again: they were not acknowledged, and the client resumed
    // from before them; the client shows them once.)
    assert.equal(raw, 2);
    assert.ok(ev.state.some((s) => s.state === 'reconnecting'));
  } finally {
    await proxy.stop();
  }
});

test('reconnects after the server restarts (close 1001)', async () => {
  const c = await user('js_restart');
  const ev = record(c);
  c.connect();
  await waitFor(() => c.state === 'open', 'open');
  const first = await timd.pushAll('before restart');
  await waitFor(() => ev.push.length === 1, 'first push');
  await timd.restart();
  const second = await timd.pushAll('after restart');
  await waitFor(() => ev.push.length === 2, 'second push', 60000);
  assert.deepEqual(
    ev.push.map((p) => p.TaskId),
    [first, second],
  );
  assert.ok(ev.state.some((s) => s.state === 'reconnecting'));
});

test('a network that dies silently is noticed by the heartbeat and reconnected', async () => {
  const proxy = await Proxy.start(timd.addr);
  try {
    const c = await user('js_frozen', { baseUrl: proxy.base, pingInterval: 200, pongTimeout: 1000 });
    const ev = record(c);
    let pongs = 0;
    c.on('pong', () => pongs++);
    c.connect();
    await waitFor(() => c.state === 'open', 'open');
    await waitFor(() => pongs >= 2, 'pongs');
    proxy.freeze();
    const id = await timd.pushAll('behind a dead network');
    await waitFor(() => ev.state.some((s) => s.state === 'reconnecting'), 'reconnecting after the heartbeat timeout');
    await waitFor(() => ev.push.some((p) => p.TaskId === id), 'the push, by catch-up', 60000);
    assert.ok(ev.error.some((e) => /heartbeat timeout/.test(e.info)));
    assert.equal(proxy.accepted >= 2, true);
  } finally {
    await proxy.stop();
  }
});

test('acks and clicks made while disconnected are sent on the next connection', async () => {
  const proxy = await Proxy.start(timd.addr);
  try {
    const c = await user('js_queued', { baseUrl: proxy.base, autoAck: false });
    const ev = record(c);
    c.connect();
    await waitFor(() => c.state === 'open', 'open');
    const id = await timd.pushTo(['js_queued'], 'ack me later');
    await waitFor(() => ev.push.length === 1, 'the push');
    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => c.state === 'reconnecting', 'reconnecting');
    c.click(id);
    proxy.refuse(false);
    await waitFor(() => c.state === 'open', 'open again', 60000);
    let last;
    await waitFor(async () => {
      const s = (last = await timd.stats(id));
      return s.DeliveredCount === 1 && s.ClickCount === 1;
    }, 'Delivered 1, Clicked 1').catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(last)}, pending ${JSON.stringify(c._pending)}`);
    });
    // The push was not acknowledged when the client reconnected, so
    // catch-up may resend it; the client shows it once.
    assert.equal(ev.push.length, 1);
  } finally {
    await proxy.stop();
  }
});

test('a revoked push is a revoke event', async () => {
  const c = await user('js_revoke');
  const ev = record(c);
  c.connect();
  await waitFor(() => c.state === 'open', 'open');
  const id = await timd.pushAll('oops');
  await waitFor(() => ev.push.length === 1, 'the push');
  await timd.rest('timpush/revoke', { TaskId: id, OfflinePushInfo: { Title: 'Withdrawn' } });
  await waitFor(() => ev.revoke.length === 1, 'the revoke');
  assert.deepEqual(ev.revoke[0], { TaskId: id });
  assert.deepEqual((await c.sync({ limit: 200 })).pushes.filter((p) => p.TaskId === id), []);
});

test('sync pages through the inbox across several pages', async () => {
  const c = await user('js_sync');
  const start = (await c.sync({ limit: 200 })).cursor;
  await timd.importAccount('js_sync_other');
  const sent = [];
  for (let i = 0; i < 5; i++) {
    sent.push(await timd.pushAll(`inbox ${i}`));
    // Pushes to someone else move the cursor without filling the page.
    await timd.pushTo(['js_sync_other'], `not for js_sync ${i}`);
  }
  const pages = [];
  for await (const page of c.syncPages({ cursor: start, limit: 2 })) pages.push(page);
  assert.ok(pages.length >= 3, `expected at least 3 pages, got ${pages.length}`);
  assert.deepEqual(
    pages.flatMap((p) => p.pushes.map((x) => x.TaskId)),
    sent,
  );
  for (const p of pages.slice(0, -1)) assert.equal(p.complete, false);
  assert.equal(pages.at(-1).complete, true);
  const one = await c.sync({ cursor: start, limit: 2 });
  assert.equal(one.pushes.length, 2);
  assert.equal(one.cursor, one.pushes[1].Seq);
  await assert.rejects(() => c.sync({ limit: 0 }), TypeError);
  await assert.rejects(() => c.sync({ limit: 201 }), TypeError);
  await assert.rejects(() => c.sync({ cursor: -1 }), TypeError);
});

test('registers devices', async () => {
  const c = await user('js_dev');
  const id = await c.registerDevice({ platform: 'web', token: 'tok-1' });
  assert.match(id, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  assert.equal(await c.registerDevice({ platform: 'ios', registrationId: 'js-dev-custom-1' }), 'js-dev-custom-1');
  // The device is an account the admin can tag.
  await timd.rest('timpush/add_tag', { UserTags: [{ To_Account: id, Tags: ['js-web'] }] });
  await assert.rejects(
    () => c.registerDevice({ platform: '' }),
    (e) => e instanceof TimdError && e.code === 70402,
  );
  await assert.rejects(
    () => c.registerDevice({ platform: 'web', registrationId: 'bad id!' }),
    (e) => e instanceof TimdError && e.code === 70402,
  );
});

test('a bad UserSig is an error event, not a crash or a reconnect loop', async () => {
  await timd.importAccount('js_bad');
  const cases = [
    { name: 'garbage sig', id: 'js_bad', sig: 'not-a-sig', code: 70003 },
    { name: 'sig for another user', id: 'js_bad', sig: await timd.sig('js_alice'), code: 70013 },
    { name: 'account never imported', id: 'js_ghost', sig: await timd.sig('js_ghost'), code: 70107 },
    { name: 'expired sig', id: 'js_bad', sig: await timd.sig('js_bad', 1), code: 70001, wait: 2100 },
  ];
  for (const tc of cases) {
    if (tc.wait) await new Promise((r) => setTimeout(r, tc.wait));
    const c = new TimdClient({ baseUrl: timd.base, sdkAppId: timd.app, identifier: tc.id, userSig: tc.sig, backoff: { initial: 20, max: 50 } });
    clients.push(c);
    const ev = record(c);
    c.connect();
    await waitFor(() => c.state === 'closed', `${tc.name}: closed`);
    assert.equal(ev.error.length, 1, tc.name);
    assert.ok(ev.error[0] instanceof TimdError, tc.name);
    assert.equal(ev.error[0].code, tc.code, `${tc.name}: ${ev.error[0].message}`);
    assert.equal(ev.error[0].fatal, true);
    await assert.rejects(
      () => c.sync(),
      (e) => e instanceof TimdError && e.code === tc.code,
      tc.name,
    );
  }
});

test('a kick is a kicked event; a userSig function reconnects with a new sig', async () => {
  await timd.importAccount('js_kick');
  let calls = 0;
  const c = new TimdClient({
    baseUrl: timd.base,
    sdkAppId: timd.app,
    identifier: 'js_kick',
    userSig: async () => {
      calls++;
      // A sig made after the kick: timd refuses older ones with 70052.
      return timd.sig('js_kick', 86400 + calls);
    },
    backoff: { initial: 1100, max: 1500, jitter: 0 },
  });
  clients.push(c);
  const ev = record(c);
  c.connect();
  await waitFor(() => c.state === 'open', 'open');
  await timd.rest('im_open_login_svc/kick', { UserID: 'js_kick' });
  await waitFor(() => ev.kicked.length === 1, 'kicked');
  assert.equal(ev.kicked[0].code, 4001);
  await waitFor(() => c.state === 'open' && calls >= 2, 'open with a new sig', 60000);
  const id = await timd.pushAll('after kick');
  await waitFor(() => ev.push.some((p) => p.TaskId === id), 'the push after the kick');
});

test('a server that cannot be reached is retried, then connected', async () => {
  const proxy = await Proxy.start(timd.addr);
  try {
    proxy.refuse(true);
    const c = await user('js_unreachable', { baseUrl: proxy.base });
    const ev = record(c);
    c.connect();
    await waitFor(() => ev.error.length >= 2, 'two failed attempts');
    assert.ok(ev.error.every((e) => e instanceof TimdError && e.code === 0 && !e.fatal));
    assert.equal(c.state, 'reconnecting');
    proxy.refuse(false);
    await waitFor(() => c.state === 'open', 'open', 60000);
  } finally {
    await proxy.stop();
  }
});

test('close() then connect() while a failed attempt is being examined opens one socket', async () => {
  const proxy = await Proxy.start(timd.addr);
  try {
    proxy.refuse(true);
    const c = await user('js_gen', { baseUrl: proxy.base, backoff: { initial: 10, max: 20 } });
    const ev = record(c);
    c.connect();
    await waitFor(() => ev.error.length >= 1, 'a failed attempt');
    for (let i = 0; i < 5; i++) {
      c.close();
      c.connect();
    }
    proxy.refuse(false);
    await waitFor(() => c.state === 'open', 'open', 60000);
    const id = await timd.pushTo(['js_gen'], 'once');
    await waitFor(() => ev.push.length === 1, 'the push');
    // Stray sockets from earlier sessions would be further connections.
    await new Promise((r) => setTimeout(r, 500));
    const online = await timd.rest('openim/query_online_status', { To_Account: ['js_gen'], IsNeedDetail: 1 });
    assert.equal(online.QueryResult[0].Detail.length, 1, JSON.stringify(online));
    assert.equal(ev.push[0].TaskId, id);
  } finally {
    await proxy.stop();
  }
});

test('bad options throw TypeError', () => {
  const ok = { baseUrl: 'http://127.0.0.1:1', sdkAppId: 1400000000, identifier: 'u', userSig: 's' };
  for (const bad of [
    undefined,
    { ...ok, baseUrl: 'ftp://x' },
    { ...ok, sdkAppId: 'abc' },
    { ...ok, identifier: '' },
    { ...ok, userSig: 5 },
    { ...ok, since: -1 },
  ]) {
    assert.throws(() => new TimdClient(bad), TypeError, JSON.stringify(bad));
  }
  assert.throws(() => new TimdClient({ ...ok, WebSocket: {} }).connect(), TypeError);
});
