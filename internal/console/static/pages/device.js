// The test device: a real client of /v1, in this page, made with timd's
// JavaScript client (served at lib/timd.js), that receives what the
// operator sends. Its state outlives page changes.

import { call, current, userSigFor } from '../api.js';
import { h, field, errorBox, fmtTime } from '../dom.js';

const state = { client: null, id: '', status: 'idle', pushes: [], error: null, views: new Set() };

function redraw() {
  for (const v of state.views) {
    if (!v.isConnected) { state.views.delete(v); continue; }
    fill(v);
  }
}

async function connect(id, sig) {
  state.error = null;
  let mod;
  try {
    mod = await import('../lib/timd.js');
  } catch {
    state.error = new Error('The JavaScript client (lib/timd.js) is not part of this build of timd.');
    redraw();
    return;
  }
  try {
    await call('im_open_login_svc/account_import', { UserID: id });
    const userSig = sig || await userSigFor(id);
    if (!userSig) throw new Error('Signed in with a UserSig: paste a UserSig made for the test device account.');
    if (state.client) state.client.close();
    const c = new mod.TimdClient({ sdkAppId: current().sdkAppId, identifier: id, userSig, platform: 'Web' });
    state.client = c;
    state.id = id;
    state.pushes = [];
    c.on('state', (d) => { state.status = d.state; redraw(); });
    c.on('push', (p) => { state.pushes.unshift({ p, revoked: false, clicked: false }); state.pushes.length = Math.min(state.pushes.length, 50); redraw(); });
    c.on('revoke', (d) => { for (const x of state.pushes) if (x.p.TaskId === d.TaskId) x.revoked = true; redraw(); });
    c.on('error', (e) => { state.error = e; redraw(); });
    c.connect();
  } catch (e) {
    state.error = e;
  }
  redraw();
}

function fill(v) {
  const id = h('input', { name: 'device-id', value: state.id || 'console-test-device', maxlength: 32, autocomplete: 'off' });
  const sig = h('input', { name: 'device-sig', autocomplete: 'off', placeholder: 'only when signed in with a UserSig' });
  const form = h('form', { class: 'inline' }, field('Test device UserID', id), current() && !current().withKey ? field('Its UserSig', sig) : null,
    h('button', { type: 'submit', text: state.client ? 'Reconnect' : 'Connect' }));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); connect(id.value.trim(), sig.value.trim()); });
  const items = state.pushes.map(({ p, revoked, clicked }, i) => {
    const o = p.OfflinePushInfo || {};
    const text = (p.MsgBody || []).map((e) => (e.MsgContent && e.MsgContent.Text) || e.MsgType).join(' ');
    return h('li', { class: revoked ? 'push revoked' : 'push', 'data-task': p.TaskId },
      h('div', { class: 'note-title', text: o.Title || text || '(no title)' }),
      o.Desc ? h('div', { class: 'note-desc', text: o.Desc }) : null,
      text && o.Title ? h('div', { class: 'note-desc', text }) : null,
      h('small', { class: 'muted', text: `${p.TaskId} · ${fmtTime(p.CreatedAt)}${revoked ? ' · revoked' : ''}${clicked ? ' · clicked' : ''}` }),
      !revoked && !clicked ? h('button', { type: 'button', class: 'small', text: 'Open (click)', onclick: () => { state.client.click(p.TaskId); state.pushes[i].clicked = true; redraw(); } }) : null);
  });
  v.replaceChildren(...[h('h3', { text: 'Test device' }), form,
    h('p', { class: 'muted', id: 'device-state' }, state.client ? `${state.id}: ${state.status}` : 'Not connected.'),
    state.error ? errorBox(state.error.code > 0 ? { kind: 'refused', code: state.error.code, info: state.error.info } : state.error) : null,
    h('ul', { class: 'pushes', id: 'device-pushes', 'aria-live': 'polite' }, items)].filter(Boolean));
}

/** panel returns the test-device panel, kept up to date while it is shown. */
export function panel() {
  const v = h('section', { class: 'card device', id: 'device' });
  state.views.add(v);
  fill(v);
  return v;
}

/** disconnect closes the test device (sign-out). */
export function disconnect() {
  if (state.client) state.client.close();
  state.client = null;
  state.pushes = [];
}
