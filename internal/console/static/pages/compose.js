// Compose: a message or a notification, a Condition with a live audience
// count, OfflinePushInfo, send now or schedule, a preview, and the test
// device that receives what is sent.

import { call, current } from '../api.js';
import { h, field, errorBox, fmtNum } from '../dom.js';
import * as device from './device.js';

/** list splits a comma-separated input into trimmed, non-empty items. */
function list(s) { return s.split(',').map((x) => x.trim()).filter(Boolean); }

/** pairs reads "name=value, name=value" into an object. */
function pairs(s) {
  const o = {};
  for (const p of list(s)) {
    const i = p.indexOf('=');
    if (i > 0) o[p.slice(0, i).trim()] = p.slice(i + 1).trim();
    else o[p] = '';
  }
  return o;
}

export async function render(main, onError) {
  main.append(h('h2', { text: 'Compose' }));
  const kind = h('select', { name: 'kind' }, h('option', { value: 'message', text: 'Message (MsgBody + OfflinePushInfo)' }), h('option', { value: 'notification', text: 'Notification (OfflinePushInfo only)' }));
  const text = h('textarea', { name: 'text', rows: 3, maxlength: 4000 });
  const inputs = {
    TagsAnd: h('input', { name: 'TagsAnd', autocomplete: 'off', placeholder: 'gold, beta' }),
    TagsOr: h('input', { name: 'TagsOr', autocomplete: 'off' }),
    TagsNot: h('input', { name: 'TagsNot', autocomplete: 'off' }),
    AttrsAnd: h('input', { name: 'AttrsAnd', autocomplete: 'off', placeholder: 'city=Berlin, sex=f' }),
    AttrsOr: h('input', { name: 'AttrsOr', autocomplete: 'off' }),
  };
  const title = h('input', { name: 'Title', maxlength: 100 });
  const desc = h('input', { name: 'Desc', maxlength: 200 });
  const ext = h('input', { name: 'Ext', maxlength: 1000 });
  const pushFlag = h('input', { type: 'checkbox', name: 'PushFlag' });
  const onlineOnly = h('input', { type: 'checkbox', name: 'OnlineOnlyFlag' });
  const life = h('input', { type: 'number', name: 'MsgLifeTime', min: 0, max: 604800, placeholder: 'default' });
  const when = h('input', { type: 'datetime-local', name: 'SchedAt' });
  const count = h('output', { id: 'audience-count', 'aria-live': 'polite', text: 'Everyone' });
  const preview = h('div', { class: 'preview', id: 'preview', 'aria-label': 'Preview' });
  const body = h('pre', { class: 'json', id: 'body-json' });
  const result = h('div', { id: 'send-result', 'aria-live': 'polite' });

  function condition() {
    const c = {};
    for (const k of ['TagsAnd', 'TagsOr', 'TagsNot']) { const v = list(inputs[k].value); if (v.length) c[k] = v; }
    for (const k of ['AttrsAnd', 'AttrsOr']) { const v = pairs(inputs[k].value); if (Object.keys(v).length) c[k] = v; }
    return Object.keys(c).length ? c : null;
  }
  function pushBody() {
    const b = { MsgRandom: Math.floor(Math.random() * 4294967295) };
    const c = condition();
    if (c) b.Condition = c;
    if (kind.value === 'message') b.MsgBody = [{ MsgType: 'TIMTextElem', MsgContent: { Text: text.value } }];
    const o = {};
    if (title.value) o.Title = title.value;
    if (desc.value) o.Desc = desc.value;
    if (ext.value) o.Ext = ext.value;
    if (pushFlag.checked) o.PushFlag = 1;
    if (Object.keys(o).length || kind.value === 'notification') b.OfflinePushInfo = o;
    if (onlineOnly.checked) b.OnlineOnlyFlag = 1;
    if (life.value !== '') b.MsgLifeTime = Number(life.value);
    return b;
  }

  let seq = 0; let timer = 0;
  async function recount() {
    const mine = ++seq;
    const c = condition();
    count.textContent = 'Counting…';
    try {
      const r = await call('timd_ext/audience_count', c ? { Condition: c } : {});
      if (mine !== seq) return;
      count.replaceChildren(h('strong', { text: fmtNum(r.Count) }), ` recipient${r.Count === 1 ? '' : 's'}${c ? '' : ' (everyone)'} · counted in ${(r.ElapsedMicros / 1000).toFixed(2)} ms`);
    } catch (e) {
      if (mine !== seq) return;
      count.replaceChildren(errorBox(e));
      if (e.kind === 'expired') onError(e);
    }
  }
  function update() {
    const b = pushBody();
    preview.replaceChildren(
      h('div', { class: 'note-title', text: title.value || (kind.value === 'message' ? 'New message' : '(no title)') }),
      h('div', { class: 'note-desc', text: desc.value || (kind.value === 'message' ? text.value : '') }));
    body.textContent = JSON.stringify(b, null, 2);
  }
  const onCond = () => { update(); clearTimeout(timer); timer = setTimeout(recount, 200); };
  for (const i of Object.values(inputs)) i.addEventListener('input', onCond);
  for (const i of [kind, text, title, desc, ext, pushFlag, onlineOnly, life]) i.addEventListener('input', update);

  const send = h('button', { type: 'submit', id: 'send', text: 'Send now' });
  const sched = h('button', { type: 'button', id: 'schedule', text: 'Schedule' });
  const form = h('form', { class: 'compose', id: 'compose' },
    h('fieldset', { class: 'grid' }, h('legend', { text: 'Content' }), field('Kind', kind), field('Message text', text)),
    h('fieldset', { class: 'grid' }, h('legend', { text: 'Audience (Condition)' }),
      h('p', { class: 'muted', text: 'Tags separated by commas; attributes as name=value. Tag and attribute clauses cannot be mixed. Empty: everyone.' }),
      field('TagsAnd — has all', inputs.TagsAnd), field('TagsOr — has any', inputs.TagsOr), field('TagsNot — minus those with all', inputs.TagsNot),
      field('AttrsAnd — matches all', inputs.AttrsAnd), field('AttrsOr — matches any', inputs.AttrsOr),
      h('p', { class: 'count' }, 'Audience: ', count)),
    h('fieldset', { class: 'grid' }, h('legend', { text: 'OfflinePushInfo' }), field('Title', title), field('Desc', desc), field('Ext', ext),
      h('label', { class: 'check' }, pushFlag, ' PushFlag 1 (no vendor push)')),
    h('fieldset', { class: 'grid' }, h('legend', { text: 'Delivery' }), h('label', { class: 'check' }, onlineOnly, ' Online only (no stored copy)'),
      field('MsgLifeTime (seconds)', life), field('Schedule at (your local time)', when)),
    h('div', { class: 'actions' }, send, sched), result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    send.disabled = true;
    try {
      const r = await call('timpush/push', pushBody());
      result.replaceChildren(h('p', { class: 'ok' }, 'Sent: ', h('a', { href: `#/pushes?task=${encodeURIComponent(r.TaskId)}`, id: 'sent-task', text: r.TaskId })));
    } catch (e) { result.replaceChildren(errorBox(e)); if (e.kind === 'expired') onError(e); } finally { send.disabled = false; }
  });
  sched.addEventListener('click', async () => {
    if (!when.value) { result.replaceChildren(h('p', { class: 'error', text: 'Choose a time to schedule at.' })); return; }
    const at = new Date(when.value).toISOString().replace('T', ' ').slice(0, 19);
    const content = pushBody();
    delete content.MsgRandom;
    try {
      const r = await call('timpush/add_sched_task', { Sdkappid: Number(current().sdkAppId), Type: content.Condition ? 'Tag' : 'All', SchedAt: at, Content: content });
      result.replaceChildren(h('p', { class: 'ok', text: `Scheduled as task ${r.TaskID} at ${at} UTC.` }));
    } catch (e) { result.replaceChildren(errorBox(e)); }
  });
  main.append(h('div', { class: 'split' }, form,
    h('aside', {}, h('h3', { text: 'Preview' }), preview, h('details', {}, h('summary', { text: 'Request body' }), body), device.panel())));
  update();
  recount();
  return () => { clearTimeout(timer); seq++; };
}
