// The session and the one caller of timd's /v4 API. The secret key, when
// the operator signs in with one, lives only here as a non-extractable
// CryptoKey, for the life of the page: it is never sent and never stored.

import { genUserSig, importKey, cryptoAvailable } from './usersig.js';

/** Lifetime of the UserSigs the console makes from a key (seconds). */
export const SIG_LIFETIME = 600;

let session = null;

/** ApiError is a failed call: kind is "refused" (timd answered an error code), "expired" (the UserSig expired) or "unreachable". */
export class ApiError extends Error {
  constructor(kind, code, info) {
    super(code ? `${code}: ${info}` : info);
    this.kind = kind;
    this.code = code;
    this.info = info;
  }
}

/** SIG_EXPIRED are the codes that mean "sign in again". */
const SIG_EXPIRED = new Set([70001, 70052]);

export function signedIn() { return session !== null; }
export function current() { return session && { sdkAppId: session.sdkAppId, identifier: session.identifier, withKey: Boolean(session.key) }; }
export function signOut() { session = null; }

/** signIn checks the inputs, makes a sig from the key if given, and checks it with a harmless call. */
export async function signIn({ sdkAppId, identifier, secret, userSig }) {
  if (!/^[1-9][0-9]{0,9}$/.test(sdkAppId) || Number(sdkAppId) > 4294967295) throw new ApiError('input', 0, 'SDKAppID must be a number like 1400000000.');
  if (!identifier || new TextEncoder().encode(identifier).length > 32) throw new ApiError('input', 0, 'The admin identifier must be 1 to 32 bytes.');
  const s = { sdkAppId, identifier, key: null, sig: '', sigAt: 0 };
  if (secret) {
    if (!cryptoAvailable()) throw new ApiError('input', 0, 'This page cannot use Web Crypto here (it needs https or localhost). Paste a UserSig instead.');
    s.key = await importKey(secret);
  } else if (userSig) {
    s.sig = userSig.trim();
  } else {
    throw new ApiError('input', 0, 'Enter the secret key or a UserSig.');
  }
  const prev = session;
  session = s;
  try {
    await call('timpush/get_attr_name', {});
  } catch (e) {
    session = prev;
    throw e;
  }
}

async function sig() {
  const now = Math.floor(Date.now() / 1000);
  if (session.key && (!session.sig || now - session.sigAt > SIG_LIFETIME / 2)) {
    session.sig = await genUserSig(session.key, session.sdkAppId, session.identifier, SIG_LIFETIME, now);
    session.sigAt = now;
  }
  return session.sig;
}

/** userSigFor makes a short-lived UserSig for another account of the app (the test device); null without a key. */
export async function userSigFor(identifier) {
  if (!session || !session.key) return null;
  return genUserSig(session.key, session.sdkAppId, identifier, SIG_LIFETIME * 6);
}

/** call posts body to /v4/cmd and resolves to the answer; it rejects with ApiError. */
export async function call(cmd, body) {
  if (!session) throw new ApiError('expired', 0, 'Not signed in.');
  const q = new URLSearchParams({
    sdkappid: session.sdkAppId, identifier: session.identifier, usersig: await sig(),
    random: String(Math.floor(Math.random() * 4294967295)), contenttype: 'json',
  });
  let resp;
  try {
    resp = await fetch(`/v4/${cmd}?${q}`, {
      method: 'POST', body: JSON.stringify(body), cache: 'no-store', credentials: 'omit',
      headers: { 'Content-Type': 'application/json' },
    });
  } catch (e) {
    throw new ApiError('unreachable', 0, `timd is not reachable (${e.message}). Is the server running?`);
  }
  let ans;
  try {
    ans = await resp.json();
  } catch {
    throw new ApiError('unreachable', 0, `timd answered HTTP ${resp.status} without its JSON envelope.`);
  }
  if (ans.ErrorCode !== 0) {
    const kind = SIG_EXPIRED.has(ans.ErrorCode) ? 'expired' : 'refused';
    throw new ApiError(kind, ans.ErrorCode, ans.ErrorInfo || '');
  }
  return ans;
}
