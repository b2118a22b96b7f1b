// Type declarations of timd.js, the JavaScript client of timd's client
// API (/v1). The wire protocol is documented in docs/client-api.md.

/** A message element, verbatim from the push (e.g. TIMTextElem). */
export interface MsgElem {
  MsgType: string;
  MsgContent: Record<string, unknown>;
}

/** A push frame, as sent live over /v1/connect and listed by /v1/sync. */
export interface Push {
  Type: 'push';
  /** The push's id; repeats are dropped by it. */
  TaskId: string;
  /** The app's order of acceptance; the cursor of sync and `since`. */
  Seq: number;
  From_Account: string;
  /** Absent for a notification-only push. */
  MsgBody?: MsgElem[];
  /** Tencent's OfflinePushInfo, verbatim; absent when the push had none. */
  OfflinePushInfo?: Record<string, unknown>;
  /** The batch business id, when given. */
  DataId?: string;
  /** Acceptance time, Unix seconds. */
  CreatedAt: number;
  /** Stored pushes: readable from sync until then (Unix seconds). */
  ExpiresAt?: number;
}

/** The connection state. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Reconnect backoff: min(max, initial * factor^n) ms, `jitter` of it random. */
export interface BackoffOptions {
  /** First delay in ms (default 500). */
  initial?: number;
  /** Longest delay in ms (default 30000). */
  max?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Share of each delay that is random, 0 to 1 (default 0.5). */
  jitter?: number;
}

export interface TimdClientOptions {
  /** http(s)://host:port of timd; default: the page's origin in a browser. */
  baseUrl?: string;
  sdkAppId: number | string;
  /** The end user's UserID (an imported account). */
  identifier: string;
  /**
   * A UserSig v2 made for identifier, or a function that returns one; a
   * function is called before every connection and request, so a new sig
   * is used after a kick or an expired one.
   */
  userSig: string | (() => string | Promise<string>);
  /** Shown by query_online_status; 1 to 32 of [A-Za-z0-9._-] (default "Web"). */
  platform?: string;
  /** Skip stored pushes up to and including this Seq (default 0). */
  since?: number;
  /** Ack every push as it arrives (default true). */
  autoAck?: boolean;
  backoff?: BackoffOptions;
  /** ms between client pings (default 25000; 0 turns them off). */
  pingInterval?: number;
  /** ms to wait for any frame after a ping before reconnecting (default 10000). */
  pongTimeout?: number;
  /** WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: typeof WebSocket;
  /** fetch; default globalThis.fetch. */
  fetch?: typeof fetch;
}

/** An error answered by timd (ErrorCode, ErrorInfo), or code 0 when timd was not reached. */
export class TimdError extends Error {
  constructor(code: number, info: string, opts?: { cause?: unknown });
  readonly name: 'TimdError';
  /** timd's ErrorCode (docs/client-api.md), or 0. */
  readonly code: number;
  /** timd's ErrorInfo, or what went wrong. */
  readonly info: string;
  /** True when retrying with the same inputs cannot help (bad or expired sig, unknown account, ...). */
  readonly fatal: boolean;
}

/** The detail of each event type. */
export interface TimdEventDetails {
  /** A push, once per TaskId (repeats are dropped and acked again). */
  push: Push;
  /** The push was withdrawn: remove it from the UI and the local store. */
  revoke: { TaskId: string };
  /** The connection state changed. */
  state: { state: ConnectionState; previous: ConnectionState };
  /** The account was kicked (close code 4001); the old sig is refused from now on. */
  kicked: { code: number; reason: string };
  /** A failure; when error.fatal the client stops (state "closed"). */
  error: TimdError;
  /** The answer to a client ping. */
  pong: Record<string, never>;
  /**
   * The connection's catch-up ended: every stored push owed up to Seq has
   * been received (Seq is now lastSeq); live pushes follow.
   */
  caughtup: { Seq: number };
}

export type TimdEventType = keyof TimdEventDetails;

/** Every event the client dispatches; detail carries its data. */
export class TimdEvent<K extends TimdEventType = TimdEventType> extends Event {
  constructor(type: K, detail: TimdEventDetails[K]);
  readonly type: K;
  readonly detail: TimdEventDetails[K];
}

/** One page of the inbox. */
export interface SyncPage {
  pushes: Push[];
  /** Pass as the next cursor. */
  cursor: number;
  /** No more pushes after cursor. */
  complete: boolean;
}

export interface SyncOptions {
  /** Return pushes with Seq above this (default 0). */
  cursor?: number;
  /** 1 to 200 (default 50). */
  limit?: number;
}

export interface DeviceOptions {
  /** 1 to 32 of [A-Za-z0-9._-], e.g. "ios", "web". */
  platform: string;
  /** The vendor push token, printable ASCII, at most 1024 bytes. */
  token?: string;
  /** A custom RegistrationID (1 to 64 of [A-Za-z0-9._-]). */
  registrationId?: string;
}

/** backoffDelay is the wait in ms before reconnect attempt n (0-based). */
export function backoffDelay(
  n: number,
  b: Required<BackoffOptions>,
  random?: () => number,
): number;

/** One end user's connection to timd. */
export class TimdClient extends EventTarget {
  constructor(opts: TimdClientOptions);
  readonly baseUrl: string;
  readonly sdkAppId: string;
  readonly identifier: string;
  readonly state: ConnectionState;
  /**
   * The `since` of the next connection: the Seq of the last "caughtup"
   * event, up to which every stored push owed has been received. It does
   * not follow live pushes, which may overtake older stored ones.
   */
  readonly lastSeq: number;

  /** Listen for one event type; fn gets the detail. Returns an unsubscribe function. */
  on<K extends TimdEventType>(type: K, fn: (detail: TimdEventDetails[K], ev: TimdEvent<K>) => void): () => void;

  addEventListener<K extends TimdEventType>(
    type: K,
    listener: ((ev: TimdEvent<K>) => void) | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends TimdEventType>(
    type: K,
    listener: ((ev: TimdEvent<K>) => void) | null,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;

  /** Open the live connection and keep it open (reconnecting with backoff) until close() or a fatal error. */
  connect(): void;
  /** Close the connection and stop reconnecting. */
  close(): void;
  /** Replace the UserSig; call connect() again after a kick or a fatal sig error. */
  setUserSig(sig: string | (() => string | Promise<string>)): void;
  /** The push was received (Delivered). Queued while disconnected. Throws TypeError for a bad TaskId. */
  ack(taskId: string): void;
  /** The user opened the push (Clicked and Delivered). Queued while disconnected. */
  click(taskId: string): void;
  /** One page of stored pushes. Rejects with TimdError. */
  sync(opts?: SyncOptions): Promise<SyncPage>;
  /** Every page from cursor until complete. */
  syncPages(opts?: SyncOptions): AsyncGenerator<SyncPage, void, void>;
  /** Register a device of the caller; resolves to its RegistrationID. Rejects with TimdError. */
  registerDevice(dev: DeviceOptions): Promise<string>;
}
