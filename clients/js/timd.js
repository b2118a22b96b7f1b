// timd.js — the JavaScript client of timd's client API (/v1): a live
// WebSocket that receives pushes and reconnects by itself, ack and click,
// inbox paging and device registration. No dependencies: it runs in
// browsers and in Node >= 20 (Node 20 and 21 need --experimental-websocket
// or a `WebSocket` option; Node 22 has a global WebSocket). The wire
// protocol is documented in docs/client-api.md.

/** Close codes after which the client does not reconnect by itself. */
const KICKED = 4001;
const NORMAL = 1000;

/** Error codes that retrying with the same inputs cannot fix. */
const FATAL_CODES = new Set([
  60012, 60025, 70001, 70002, 70003, 70009, 70013, 70014, 70016, 70020, 70052, 70107,
]);

/** Error codes that a fresh UserSig may fix (with a userSig function). */
const SIG_CODES = new Set([70001, 70003, 70009, 70052]);

const MAX_TASK_ID = 128;
const SEEN_LIMIT = 4096;
const PENDING_LIMIT = 1024;
/** The most TaskIds one batched ack may carry. */
const MAX_ACK_IDS = 100;

/** validTaskId reports whether id is 1 to MAX_TASK_ID bytes of UTF-8. */
function validTaskId(id) {
  return id !== '' && new TextEncoder().encode(id).length <= MAX_TASK_ID;
}

/**
 * TimdError is an error answered by timd (its ErrorCode and ErrorInfo),
 * or, with code 0, a failure to reach it.
 */
export class TimdError extends Error {
  /**
   * @param {number} code
   * @param {string} info
   * @param {{cause?: unknown}} [opts]
   */
  constructor(code, info, opts) {
    super(code ? `timd error ${code}: ${info}` : info, opts);
    this.name = 'TimdError';
    this.code = code;
    this.info = info;
  }

  /** fatal reports whether retrying with the same inputs cannot help. */
  get fatal() {
    return FATAL_CODES.has(this.code);
  }
}

/** TimdEvent is every event the client dispatches; detail carries its data. */
export class TimdEvent extends Event {
  /**
   * @param {string} type
   * @param {unknown} detail
   */
  constructor(type, detail) {
    super(type);
    this.detail = detail;
  }
}

/**
 * backoffDelay is the wait before reconnect attempt n (0-based):
 * min(max, initial * factor^n), with the upper `jitter` share of it
 * random ("equal jitter"), so that clients dropped together do not
 * come back together.
 * @param {number} n
 * @param {{initial: number, max: number, factor: number, jitter: number}} b
 * @param {() => number} [random]
 */
export function backoffDelay(n, b, random = Math.random) {
  const d = Math.min(b.max, b.initial * Math.pow(b.factor, n));
  return Math.round(d * (1 - b.jitter) + d * b.jitter * random());
}

/**
 * TimdClient is one end user's connection to timd. It is an EventTarget:
 * "push", "revoke", "caughtup", "state", "kicked", "error" and "pong" events, each a
 * TimdEvent whose detail is documented in timd.d.ts; on(type, fn) is a
 * shorthand that passes the detail and returns an unsubscribe function.
 */
export class TimdClient extends EventTarget {
  /** @param {import('./timd.js').TimdClientOptions} opts */
  constructor(opts) {
    super();
    if (!opts || typeof opts !== 'object') throw new TypeError('TimdClient: options are required');
    const base = opts.baseUrl ?? globalThis.location?.origin;
    if (typeof base !== 'string' || !/^https?:\/\//i.test(base)) {
      throw new TypeError('TimdClient: baseUrl must be an http:// or https:// URL');
    }
    if (opts.sdkAppId === undefined || opts.sdkAppId === null || !/^[0-9]{1,20}$/.test(String(opts.sdkAppId))) {
      throw new TypeError('TimdClient: sdkAppId must be a decimal SDKAppID');
    }
    if (typeof opts.identifier !== 'string' || opts.identifier === '') {
      throw new TypeError('TimdClient: identifier must be a non-empty string');
    }
    if (typeof opts.userSig !== 'string' && typeof opts.userSig !== 'function') {
      throw new TypeError('TimdClient: userSig must be a string or a function returning one');
    }
    this.baseUrl = base.replace(/\/+$/, '');
    this.sdkAppId = String(opts.sdkAppId);
    this.identifier = opts.identifier;
    this.platform = opts.platform ?? 'Web';
    this.autoAck = opts.autoAck ?? true;
    this.backoff = { initial: 500, max: 30000, factor: 2, jitter: 0.5, ...opts.backoff };
    this.pingInterval = opts.pingInterval ?? 25000;
    this.pongTimeout = opts.pongTimeout ?? 10000;
    this._userSig = opts.userSig;
    this._sig = typeof opts.userSig === 'string' ? opts.userSig : '';
    this._WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    this._fetch = opts.fetch ?? globalThis.fetch?.bind(globalThis);
    /** @type {number} */
    this._lastSeq = Number(opts.since ?? 0);
    if (!Number.isSafeInteger(this._lastSeq) || this._lastSeq < 0) {
      throw new TypeError('TimdClient: since must be a non-negative integer');
    }
    /** @type {'idle'|'connecting'|'open'|'reconnecting'|'closed'} */
    this._state = 'idle';
    this._ws = null;
    this._attempt = 0;
    this._timer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._seen = new Set();
    this._pending = [];
    this._wanted = false;
    this._sigFailures = 0;
    // _gen changes with every connect() and close(), so that the async
    // steps of an earlier session (a sig function, a probe) cannot open a
    // second socket after the caller closed and connected again.
    this._gen = 0;
  }

  /** state is the connection state: idle, connecting, open, reconnecting or closed. */
  get state() {
    return this._state;
  }

  /**
   * lastSeq is the `since` of the next connect: the Seq of the last
   * "caughtup" frame, up to which every stored push owed to this account
   * has been received. It does not follow live pushes: a live push may
   * overtake an older stored push still fanning out, and resuming after
   * its Seq would skip that one for good.
   */
  get lastSeq() {
    return this._lastSeq;
  }

  /**
   * on listens for one event type and calls fn with the event's detail.
   * It returns a function that removes the listener.
   * @param {string} type
   * @param {(detail: any, ev: TimdEvent) => void} fn
   */
  on(type, fn) {
    const l = (/** @type {any} */ ev) => fn(ev.detail, ev);
    this.addEventListener(type, l);
    return () => this.removeEventListener(type, l);
  }

  /**
   * connect opens the live connection and keeps it open, reconnecting
   * with backoff until close() or a failure that retrying cannot fix
   * (reported as an "error" event, state "closed").
   */
  connect() {
    if (typeof this._WebSocket !== 'function') {
      throw new TypeError('TimdClient: no WebSocket: pass the WebSocket option (Node 20: run with --experimental-websocket)');
    }
    if (this._wanted) return;
    this._wanted = true;
    this._gen++;
    this._attempt = 0;
    this._sigFailures = 0;
    this._open();
  }

  /** close ends the connection and stops reconnecting. */
  close() {
    this._wanted = false;
    this._gen++;
    clearTimeout(this._timer);
    this._stopHeartbeat();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(NORMAL);
      } catch {
        // already closing
      }
    }
    this._setState('closed');
  }

  /**
   * setUserSig replaces the UserSig (for example after a "kicked" event or
   * an expired sig); call connect() again to reconnect with it.
   * @param {string | (() => string | Promise<string>)} sig
   */
  setUserSig(sig) {
    if (typeof sig !== 'string' && typeof sig !== 'function') {
      throw new TypeError('TimdClient: userSig must be a string or a function returning one');
    }
    this._userSig = sig;
    this._sig = typeof sig === 'string' ? sig : '';
  }

  /**
   * ack tells the server the push was received (it counts as Delivered).
   * Sent at once when connected, else on the next connection.
   * @param {string} taskId
   */
  ack(taskId) {
    this._send('ack', taskId);
  }

  /**
   * click tells the server the user opened the push (it counts as
   * Clicked, and as Delivered).
   * @param {string} taskId
   */
  click(taskId) {
    this._send('click', taskId);
  }

  /**
   * sync reads one page of the caller's stored pushes with Seq above
   * cursor. Rejects with a TimdError.
   * @param {{cursor?: number, limit?: number}} [opts]
   * @returns {Promise<{pushes: any[], cursor: number, complete: boolean}>}
   */
  async sync(opts = {}) {
    const cursor = opts.cursor ?? 0;
    const limit = opts.limit ?? 50;
    if (!Number.isSafeInteger(cursor) || cursor < 0) throw new TypeError('sync: cursor must be a non-negative integer');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 200) throw new TypeError('sync: limit must be 1 to 200');
    const r = await this._call('GET', '/v1/sync', { cursor: String(cursor), limit: String(limit) });
    return { pushes: Array.isArray(r.Pushes) ? r.Pushes : [], cursor: r.Cursor, complete: r.Complete === true };
  }

  /**
   * syncPages pages through the inbox from cursor until it is complete,
   * yielding every page (a page may be empty; keep going).
   * @param {{cursor?: number, limit?: number}} [opts]
   */
  async *syncPages(opts = {}) {
    let cursor = opts.cursor ?? 0;
    for (;;) {
      const page = await this.sync({ cursor, limit: opts.limit });
      yield page;
      if (page.complete || page.cursor <= cursor) return;
      cursor = page.cursor;
    }
  }

  /**
   * registerDevice registers a device of the caller and resolves to its
   * RegistrationID. Rejects with a TimdError (70402 invalid fields,
   * 70398 too many devices).
   * @param {{platform: string, token?: string, registrationId?: string}} dev
   * @returns {Promise<string>}
   */
  async registerDevice(dev) {
    if (!dev || typeof dev !== 'object') throw new TypeError('registerDevice: a device object is required');
    /** @type {Record<string, string>} */
    const body = { Platform: dev.platform };
    if (dev.token !== undefined) body.Token = dev.token;
    if (dev.registrationId !== undefined) body.RegistrationID = dev.registrationId;
    const r = await this._call('POST', '/v1/device/register', {}, JSON.stringify(body));
    return r.RegistrationID;
  }

  // ---- internals ----

  _setState(s) {
    if (this._state === s) return;
    const previous = this._state;
    this._state = s;
    this.dispatchEvent(new TimdEvent('state', { state: s, previous }));
  }

  _emitError(err) {
    this.dispatchEvent(new TimdEvent('error', err));
  }

  async _currentSig() {
    if (typeof this._userSig === 'function') {
      this._sig = String(await this._userSig());
    }
    return this._sig;
  }

  _query(extra) {
    const q = new URLSearchParams({ sdkappid: this.sdkAppId, identifier: this.identifier, usersig: this._sig, ...extra });
    return q.toString();
  }

  async _call(method, path, query, body) {
    if (typeof this._fetch !== 'function') throw new TypeError('TimdClient: no fetch: pass the fetch option');
    await this._currentSig();
    let res;
    try {
      res = await this._fetch(`${this.baseUrl}${path}?${this._query(query)}`, {
        method,
        body,
        headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
      });
    } catch (e) {
      throw new TimdError(0, `timd unreachable: ${e?.message ?? e}`, { cause: e });
    }
    let r;
    try {
      r = await res.json();
    } catch (e) {
      throw new TimdError(0, `timd answered HTTP ${res.status} without a JSON envelope`, { cause: e });
    }
    if (!r || typeof r !== 'object') throw new TimdError(0, 'timd answered a JSON value that is not an envelope');
    if (r.ErrorCode !== 0) throw new TimdError(Number(r.ErrorCode) || 0, String(r.ErrorInfo ?? ''));
    return r;
  }

  async _open() {
    if (!this._wanted) return;
    const gen = this._gen;
    this._setState(this._attempt === 0 && this._state !== 'reconnecting' ? 'connecting' : 'reconnecting');
    try {
      await this._currentSig();
    } catch (e) {
      this._emitError(new TimdError(0, `userSig function failed: ${e?.message ?? e}`, { cause: e }));
      if (gen === this._gen) this._retry();
      return;
    }
    if (!this._wanted || gen !== this._gen) return;
    const url = `${this.baseUrl.replace(/^http/i, 'ws')}/v1/connect?${this._query({
      platform: this.platform,
      since: String(this._lastSeq),
      // Catch-up in "pushes" messages: one per page of stored pushes.
      batch: '1',
    })}`;
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (e) {
      this._wanted = false;
      this._emitError(new TimdError(0, `cannot open WebSocket: ${e?.message ?? e}`, { cause: e }));
      this._setState('closed');
      return;
    }
    this._ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      opened = true;
      this._attempt = 0;
      this._sigFailures = 0;
      this._setState('open');
      this._startHeartbeat();
      const pending = this._pending;
      this._pending = [];
      for (const f of pending) this._write(f);
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._onFrame(ev.data);
    };
    const finish = (/** @type {number} */ code, /** @type {string} */ reason) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._stopHeartbeat();
      this._onClose(code, reason, opened);
    };
    ws.onerror = () => {
      // Browsers follow an error with a close event; some WebSocket
      // implementations (Node 20's, for a refused handshake) do not, so
      // an error ends the connection here unless the close comes soon.
      if (this._ws !== ws) return;
      if (!opened) {
        finish(1006, '');
        try {
          ws.close();
        } catch {
          // not open yet
        }
      } else {
        setTimeout(() => finish(1006, ''), 1000);
      }
    };
    ws.onclose = (ev) => finish(ev.code, ev.reason);
  }

  _onFrame(data) {
    clearTimeout(this._pongTimer);
    this._pongTimer = null;
    if (typeof data !== 'string') return;
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (!f || typeof f !== 'object') return;
    switch (f.Type) {
      case 'push':
        if (this._onPush(f) && this.autoAck) this.ack(f.TaskId);
        return;
      case 'pushes': {
        // A batch of catch-up push frames, in Seq order: each is handled
        // as a push frame, and they are acknowledged together.
        if (!Array.isArray(f.Pushes)) return;
        const ids = [];
        for (const p of f.Pushes) {
          if (p && typeof p === 'object' && p.Type === 'push' && this._onPush(p)) ids.push(p.TaskId);
        }
        if (this.autoAck) this._ackAll(ids);
        return;
      }
      case 'revoke':
        if (typeof f.TaskId === 'string') this.dispatchEvent(new TimdEvent('revoke', { TaskId: f.TaskId }));
        return;
      case 'pong':
        this.dispatchEvent(new TimdEvent('pong', {}));
        return;
      case 'caughtup':
        // Every stored push up to Seq has been received on this
        // connection (the server sends them in Seq order first).
        if (Number.isSafeInteger(f.Seq) && f.Seq > this._lastSeq) this._lastSeq = f.Seq;
        this.dispatchEvent(new TimdEvent('caughtup', { Seq: this._lastSeq }));
        return;
      default:
        // Unknown frame types are ignored, as the protocol asks.
    }
  }

  /**
   * _onPush emits push frame f unless its TaskId was seen already (a
   * repeat: catch-up and live, or a resend after a reconnect). It reports
   * whether f is to be acknowledged: every push with a TaskId an ack can
   * carry, repeats included, since the server resends only
   * unacknowledged pushes.
   */
  _onPush(f) {
    if (typeof f.TaskId !== 'string') return false;
    // Seq is not a resume point (see lastSeq): "caughtup" frames are.
    if (!this._seen.has(f.TaskId)) {
      this._remember(f.TaskId);
      this.dispatchEvent(new TimdEvent('push', f));
    }
    return validTaskId(f.TaskId);
  }

  /** _ackAll acknowledges ids in batched ack frames of at most MAX_ACK_IDS. */
  _ackAll(ids) {
    for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
      this._queue(JSON.stringify({ Type: 'ack', TaskIds: ids.slice(i, i + MAX_ACK_IDS) }));
    }
  }

  _remember(id) {
    this._seen.add(id);
    if (this._seen.size > SEEN_LIMIT) {
      this._seen.delete(this._seen.values().next().value);
    }
  }

  async _onClose(code, reason, opened) {
    if (!this._wanted) {
      this._setState('closed');
      return;
    }
    if (code === KICKED) {
      this.dispatchEvent(new TimdEvent('kicked', { code, reason }));
      if (typeof this._userSig === 'function') {
        this._retry();
      } else {
        this._wanted = false;
        this._setState('closed');
      }
      return;
    }
    if (!opened) {
      // The server answers a refused /v1/connect with an HTTP 200
      // envelope, which a WebSocket API cannot read: ask again over HTTP
      // to learn why. 60008 ("expected a WebSocket handshake") means the
      // sig and parameters were accepted, so the failure was transient.
      const gen = this._gen;
      const err = await this._probe();
      if (!this._wanted || gen !== this._gen) return;
      if (err) {
        this._emitError(err);
        if (err.fatal) {
          if (SIG_CODES.has(err.code) && typeof this._userSig === 'function' && this._sigFailures++ === 0) {
            this._retry();
            return;
          }
          this._wanted = false;
          this._setState('closed');
          return;
        }
      }
    } else if (code !== NORMAL && code !== 1001 && code !== 1006) {
      this._emitError(new TimdError(0, `connection closed: ${code} ${reason}`));
    }
    this._retry();
  }

  async _probe() {
    if (typeof this._fetch !== 'function') return null;
    const url = `${this.baseUrl}/v1/connect?${this._query({ platform: this.platform, since: String(this._lastSeq) })}`;
    try {
      const res = await this._fetch(url);
      const r = await res.json();
      if (r && typeof r === 'object' && r.ErrorCode !== 60008 && r.ErrorCode !== 0) {
        return new TimdError(Number(r.ErrorCode) || 0, String(r.ErrorInfo ?? ''));
      }
      return null;
    } catch (e) {
      return new TimdError(0, `timd unreachable: ${e?.message ?? e}`, { cause: e });
    }
  }

  _retry() {
    if (!this._wanted) return;
    this._setState('reconnecting');
    const d = backoffDelay(this._attempt++, this.backoff);
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._open(), d);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    if (!(this.pingInterval > 0)) return;
    this._pingTimer = setInterval(() => {
      if (!this._write(JSON.stringify({ Type: 'ping' })) || this._pongTimer) return;
      const ws = this._ws;
      this._pongTimer = setTimeout(() => {
        // No frame at all since the ping: the network is gone. Do not
        // wait for a close handshake that may never come.
        if (this._ws === ws && ws) {
          this._ws = null;
          this._stopHeartbeat();
          try {
            ws.close(4000, 'heartbeat timeout');
          } catch {
            // ignore
          }
          this._onClose(4000, 'heartbeat timeout', true);
        }
      }, this.pongTimeout);
    }, this.pingInterval);
  }

  _stopHeartbeat() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = null;
    this._pongTimer = null;
  }

  _send(type, taskId) {
    if (typeof taskId !== 'string' || !validTaskId(taskId)) {
      throw new TypeError(`${type}: TaskId must be a string of 1 to ${MAX_TASK_ID} bytes`);
    }
    this._queue(JSON.stringify({ Type: type, TaskId: taskId }));
  }

  /** _queue writes frame f now, or on the next connection. */
  _queue(f) {
    if (!this._write(f)) {
      this._pending.push(f);
      if (this._pending.length > PENDING_LIMIT) this._pending.shift();
    }
  }

  _write(f) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(f);
      return true;
    } catch {
      return false;
    }
  }
}
