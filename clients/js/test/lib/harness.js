// Test harness: starts a real timd binary (TIMD_BIN, or built here with
// `go build`) on a free port with a temporary store and an app whose key
// is made for this run, makes UserSigs with `timd usersig`, calls the
// admin REST API, and runs a TCP proxy that a test can cut to drop the
// client's connection the way a failing network or server would.
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomInt } from 'node:crypto';
import net from 'node:net';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

if (typeof WebSocket !== 'function') {
  throw new Error('no global WebSocket: run with Node >= 22, or Node 20/21 with --experimental-websocket');
}

let built;
/** binary returns the path of a timd binary, building one if TIMD_BIN is unset. */
async function binary() {
  if (process.env.TIMD_BIN) return process.env.TIMD_BIN;
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'timd-js-bin-'));
    const bin = join(dir, 'timd');
    await run('go', ['build', '-o', bin, './cmd/timd'], { cwd: repo, maxBuffer: 1 << 24 });
    return bin;
  })();
  return built;
}

/** waitFor polls cond until it returns a truthy value or the deadline passes. */
export async function waitFor(cond, what, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Timd is one running timd process. */
export class Timd {
  static async start() {
    const t = new Timd();
    t.bin = await binary();
    t.store = await mkdtemp(join(tmpdir(), 'timd-js-store-'));
    t.app = 1400000000 + randomInt(100000000);
    t.key = randomBytes(32).toString('hex');
    t.admin = 'administrator';
    t.sigs = new Map();
    await t._spawn('127.0.0.1:0');
    return t;
  }

  async _spawn(listen) {
    this.proc = spawn(
      this.bin,
      ['serve', '--listen', listen, '--store', this.store, '--limits', 'off', '--app', `${this.app}:${this.key}:${this.admin}`],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TIMD_LOG_LEVEL: 'info' } },
    );
    this.exited = new Promise((r) => this.proc.once('exit', r));
    let buf = '';
    const addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timd did not start listening')), 60000);
      this.proc.stderr.on('data', (d) => {
        buf += d;
        const m = /msg=listening addr=(\S+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
        if (buf.length > 1 << 20) buf = buf.slice(-4096);
      });
      this.proc.once('exit', (c) => reject(new Error(`timd exited with ${c}: ${buf}`)));
    });
    this.addr = addr;
    this.base = `http://${addr}`;
  }

  /** restart stops timd with SIGTERM and starts it again on the same address and store. */
  async restart() {
    this.proc.kill('SIGTERM');
    await this.exited;
    await this._spawn(this.addr);
  }

  async stop() {
    if (this.proc.exitCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    await rm(this.store, { recursive: true, force: true });
  }

  /** sig makes a UserSig for id with `timd usersig`. */
  async sig(id, expire) {
    const k = `${id}/${expire ?? ''}`;
    if (!this.sigs.has(k)) {
      const args = ['usersig', '--sdkappid', String(this.app), '--key', this.key, '--identifier', id];
      if (expire !== undefined) args.push('--expire', String(expire));
      const { stdout } = await run(this.bin, args);
      this.sigs.set(k, stdout.trim());
    }
    return this.sigs.get(k);
  }

  /** rest calls /v4/<path> as the admin and returns the envelope (throws unless ErrorCode is 0). */
  async rest(path, body) {
    const q = new URLSearchParams({
      sdkappid: String(this.app),
      identifier: this.admin,
      usersig: await this.sig(this.admin),
      random: String(randomInt(1 << 30)),
      contenttype: 'json',
    });
    const res = await fetch(`${this.base}/v4/${path}?${q}`, { method: 'POST', body: JSON.stringify(body) });
    const r = await res.json();
    if (r.ErrorCode !== 0) throw new Error(`${path}: ${JSON.stringify(r)}`);
    return r;
  }

  async importAccount(id) {
    await this.rest('im_open_login_svc/account_import', { UserID: id });
  }

  /** push sends a stored push to everyone and returns its TaskId. */
  async pushAll(text) {
    const r = await this.rest('timpush/push', {
      From_Account: this.admin,
      MsgRandom: randomInt(1 << 30),
      MsgBody: [{ MsgType: 'TIMTextElem', MsgContent: { Text: text } }],
    });
    return r.TaskId;
  }

  /** pushTo sends a stored push to the named accounts (timpush/batch) and returns its TaskId. */
  async pushTo(ids, text) {
    const r = await this.rest('timpush/batch', {
      From_Account: this.admin,
      To_Account: ids,
      MsgRandom: randomInt(1 << 30),
      MsgBody: [{ MsgType: 'TIMTextElem', MsgContent: { Text: text } }],
      OfflinePushInfo: { Title: 'timd', Desc: text },
    });
    return r.TaskId;
  }

  /** stats returns the all_member_push_statistics result of one task. */
  async stats(taskId) {
    const now = Math.floor(Date.now() / 1000);
    const r = await this.rest('timpush/all_member_push_statistics', {
      StartTime: now - 3600,
      EndTime: now + 60,
      TaskID: [taskId],
    });
    return r.Results[0];
  }
}

/**
 * Proxy forwards TCP connections to target. cut() drops every open one
 * (both sides, no close frame), refuse(true) drops new ones at once, and
 * freeze() silently discards everything on the open ones from then on, as
 * a network that died without telling anyone.
 */
export class Proxy {
  static async start(target) {
    const p = new Proxy();
    const i = target.lastIndexOf(':');
    const [host, port] = [target.slice(0, i), Number(target.slice(i + 1))];
    p.pairs = new Set();
    p.refusing = false;
    p.accepted = 0;
    p.server = net.createServer((c) => {
      if (p.refusing) {
        c.destroy();
        return;
      }
      p.accepted++;
      const u = net.connect(port, host);
      const pair = { c, u, frozen: false };
      p.pairs.add(pair);
      c.on('data', (d) => pair.frozen || u.write(d));
      u.on('data', (d) => pair.frozen || c.write(d));
      const done = () => {
        c.destroy();
        u.destroy();
        p.pairs.delete(pair);
      };
      c.on('error', done).on('close', done);
      u.on('error', done).on('close', done);
    });
    await new Promise((r) => p.server.listen(0, '127.0.0.1', r));
    p.base = `http://127.0.0.1:${p.server.address().port}`;
    return p;
  }

  cut() {
    for (const { c, u } of this.pairs) {
      c.destroy();
      u.destroy();
    }
    this.pairs.clear();
  }

  freeze() {
    for (const pair of this.pairs) pair.frozen = true;
  }

  refuse(on) {
    this.refusing = on;
  }

  async stop() {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}
