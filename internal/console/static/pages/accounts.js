// Accounts: look one up (attributes, tags, devices, online state), edit
// its attributes and tags, list accounts page by page, and import a CSV
// or JSON Lines file.

import { call } from '../api.js';
import { h, clear, table, field, errorBox, fmtNum } from '../dom.js';

export async function render(main, onError) {
  main.append(h('h2', { text: 'Accounts' }));
  const out = h('div', { id: 'account-detail' });
  const id = h('input', { name: 'lookup', autocomplete: 'off', required: true, maxlength: 64 });
  const form = h('form', { class: 'card inline', id: 'lookup' }, field('UserID or RegistrationID', id), h('button', { type: 'submit', text: 'Look up' }));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); show(out, id.value.trim(), onError); });
  main.append(form, out, listSection(out, onError), importSection());
  const wanted = new URLSearchParams(location.hash.split('?')[1] || '').get('id');
  if (wanted) { id.value = wanted; show(out, wanted, onError); }
}

/** show renders one account. */
async function show(out, acct, onError) {
  clear(out);
  if (!acct) return;
  try {
    const [names, attrs, tags, online, devices] = await Promise.all([
      call('timpush/get_attr_name', {}),
      call('timpush/get_attr', { To_Account: [acct] }),
      call('timpush/get_tag', { To_Account: [acct] }),
      call('openim/query_online_status', { To_Account: [acct], IsNeedDetail: 1 }),
      call('timd_ext/account_devices', { UserID: acct }),
    ]);
    const a = (attrs.UserAttrs || []).find((x) => x.To_Account === acct);
    const t = (tags.UserTags || []).find((x) => x.To_Account === acct);
    const unknown = (online.ErrorList || []).some((x) => x.To_Account === acct && x.ErrorCode === 70107);
    if (unknown) {
      out.append(h('p', { class: 'card', role: 'status' }, 'No account ', h('code', { text: acct }), ' in this app.'));
      return;
    }
    const st = (online.QueryResult || []).find((x) => x.To_Account === acct);
    const card = h('section', { class: 'card', 'aria-label': `Account ${acct}` },
      h('h3', {}, h('span', { class: 'acct-id', text: acct }), ' ',
        h('span', { class: st && st.Status === 'Online' ? 'badge on' : 'badge', text: st ? st.Status : 'Unknown' })));
    const defined = Object.entries(names.AttrNames || {}).filter(([, n]) => n);
    const values = (a && a.Attrs) || {};
    card.append(h('h4', { text: 'Attributes' }), attrEditor(acct, defined, values, () => show(out, acct, onError), onError));
    card.append(h('h4', { text: 'Tags' }), tagEditor(acct, (t && t.Tags) || [], () => show(out, acct, onError), onError));
    const devs = devices.Devices || [];
    card.append(h('h4', { text: 'Devices' }), table('', ['RegistrationID', 'Owner'], devs.map((d) => [d.Account, d.Owner || '']), 'No registered devices.'));
    if (st && st.Detail && st.Detail.length) {
      card.append(h('h4', { text: 'Connections' }), table('', ['Platform', 'Status'], st.Detail.map((d) => [d.Platform || '', d.Status || ''])));
    }
    out.append(card);
  } catch (e) {
    out.append(errorBox(e));
    if (e.kind === 'expired') onError(e);
  }
}

function attrEditor(acct, defined, values, refresh, onError) {
  if (!defined.length) return h('p', { class: 'muted', text: 'The app defines no attributes (see Audience).' });
  const inputs = {};
  const rows = defined.map(([, name]) => {
    inputs[name] = h('input', { value: values[name] || '', maxlength: 50, 'aria-label': `Value of ${name}` });
    return [name, inputs[name]];
  });
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'attrs' }, table('', ['Name', 'Value (empty removes it)'], rows), h('button', { type: 'submit', text: 'Save attributes' }), status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const set = {}; const remove = [];
    for (const [, name] of defined) {
      const v = inputs[name].value;
      if (v) { if (v !== values[name]) set[name] = v; } else if (values[name]) remove.push(name);
    }
    try {
      if (Object.keys(set).length) await call('timpush/set_attr', { UserAttrs: [{ To_Account: acct, Attrs: set }] });
      if (remove.length) await call('timpush/remove_attr', { UserAttrs: [{ To_Account: acct, Attrs: remove }] });
      refresh();
    } catch (e) { status.replaceChildren(errorBox(e)); if (e.kind === 'expired') onError(e); }
  });
  return form;
}

function tagEditor(acct, tags, refresh, onError) {
  const status = h('div', { 'aria-live': 'polite' });
  const list = h('ul', { class: 'tags' }, tags.map((tag) => h('li', {}, h('span', { class: 'tag', text: tag }),
    h('button', { type: 'button', class: 'small', 'aria-label': `Remove tag ${tag}`, text: '×', onclick: async () => {
      try { await call('timpush/remove_tag', { UserTags: [{ To_Account: acct, Tags: [tag] }] }); refresh(); } catch (e) { status.replaceChildren(errorBox(e)); }
    } }))));
  const input = h('input', { maxlength: 50, 'aria-label': 'New tag', placeholder: 'new tag' });
  const form = h('form', { class: 'inline' }, input, h('button', { type: 'submit', text: 'Add tag' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!input.value) return;
    try { await call('timpush/add_tag', { UserTags: [{ To_Account: acct, Tags: [input.value] }] }); refresh(); } catch (e) { status.replaceChildren(errorBox(e)); if (e.kind === 'expired') onError(e); }
  });
  return h('div', {}, tags.length ? list : h('p', { class: 'muted', text: 'No tags.' }), form, status);
}

/** listSection pages through the app's accounts. */
function listSection(out, onError) {
  const body = h('div', {});
  let cursor = '';
  const more = h('button', { type: 'button', text: 'List accounts' });
  more.addEventListener('click', async () => {
    try {
      const r = await call('timd_ext/account_list', cursor ? { Limit: 50, Cursor: cursor } : { Limit: 50 });
      body.replaceChildren(table('', ['Account', 'Type', 'Owner'], r.Accounts.map((a) => [
        h('a', { href: `#/accounts?id=${encodeURIComponent(a.Account)}`, text: a.Account, onclick: (ev) => { ev.preventDefault(); show(out, a.Account, onError); } }),
        a.Type === 1 ? 'device' : 'user', a.Owner || '']), 'No accounts.'));
      cursor = r.NextCursor;
      more.textContent = cursor ? 'Next page' : 'From the start';
    } catch (e) { body.replaceChildren(errorBox(e)); }
  });
  return h('section', { class: 'card' }, h('h3', { text: 'All accounts' }), more, body);
}

/** parseImport reads CSV (header UserID[,Tags][,<attribute>...]; Tags separated by ';') or JSON Lines ({"UserID","Tags":[],"Attrs":{}}). */
export function parseImport(text, name) {
  const lines = text.split(/\r?\n/);
  const items = []; const errors = [];
  const jsonl = /\.jsonl?$/i.test(name) || (lines[0] || '').trim().startsWith('{');
  let head = null;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 1;
    if (!line) return;
    if (jsonl) {
      try {
        const o = JSON.parse(line);
        if (!o || typeof o.UserID !== 'string' || !o.UserID) throw new Error('UserID (a string) is required');
        items.push({ line: n, id: o.UserID, tags: Array.isArray(o.Tags) ? o.Tags.map(String) : [], attrs: o.Attrs && typeof o.Attrs === 'object' ? o.Attrs : {} });
      } catch (e) { errors.push({ line: n, text: e.message }); }
      return;
    }
    const cells = line.split(',').map((c) => c.trim());
    if (!head) { head = cells; if (head[0] !== 'UserID') errors.push({ line: n, text: 'the first line must be a header starting with UserID' }); return; }
    const it = { line: n, id: cells[0], tags: [], attrs: {} };
    if (!it.id) { errors.push({ line: n, text: 'empty UserID' }); return; }
    head.slice(1).forEach((col, j) => {
      const v = cells[j + 1] || '';
      if (col === 'Tags') it.tags = v ? v.split(';').map((x) => x.trim()).filter(Boolean) : [];
      else if (v) it.attrs[col] = v;
    });
    items.push(it);
  });
  return { items, errors };
}

function importSection() {
  const file = h('input', { type: 'file', accept: '.csv,.jsonl,.json,text/csv' });
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Import progress' });
  const status = h('p', { 'aria-live': 'polite' });
  const report = h('div', { id: 'import-report' });
  const btn = h('button', { type: 'button', text: 'Import' });
  btn.addEventListener('click', async () => {
    const f = file.files && file.files[0];
    if (!f) { status.textContent = 'Choose a file first.'; return; }
    btn.disabled = true;
    clear(report);
    const { items, errors } = parseImport(await f.text(), f.name);
    bar.max = Math.max(items.length, 1);
    bar.value = 0;
    const byID = (batch) => new Map(batch.map((it) => [it.id, it]));
    for (let i = 0; i < items.length; i += 100) {
      const batch = items.slice(i, i + 100);
      const index = byID(batch);
      const fail = (id, text) => { const it = index.get(id); errors.push({ line: it ? it.line : 0, text: `${id}: ${text}` }); };
      try {
        const r = await call('im_open_login_svc/multiaccount_import', { Accounts: batch.map((it) => it.id) });
        for (const id of r.FailAccounts || []) fail(id, 'not imported (UserID empty or over 32 bytes)');
        const withAttrs = batch.filter((it) => Object.keys(it.attrs).length);
        if (withAttrs.length) {
          try {
            const a = await call('timpush/set_attr', { UserAttrs: withAttrs.map((it) => ({ To_Account: it.id, Attrs: it.attrs })) });
            for (const e of a.ErrorList || []) fail(e.To_Account, `attributes refused, error ${e.ErrorCode}`);
          } catch (e) { if (e.kind !== 'refused') throw e; withAttrs.forEach((it) => errors.push({ line: it.line, text: `attributes: error ${e.code}: ${e.info}` })); }
        }
        const withTags = batch.filter((it) => it.tags.length);
        // add_tag takes at most 10 tags per account and 100 accounts per request.
        const chunks = [];
        for (const it of withTags) for (let k = 0; k < it.tags.length; k += 10) chunks.push({ To_Account: it.id, Tags: it.tags.slice(k, k + 10) });
        for (let k = 0; k < chunks.length; k += 100) {
          try {
            const t = await call('timpush/add_tag', { UserTags: chunks.slice(k, k + 100) });
            for (const e of t.ErrorList || []) fail(e.To_Account, `tags refused, error ${e.ErrorCode}`);
          } catch (e) { if (e.kind !== 'refused') throw e; chunks.slice(k, k + 100).forEach((c) => fail(c.To_Account, `tags: error ${e.code}: ${e.info}`)); }
        }
      } catch (e) {
        report.append(errorBox(e));
        break;
      }
      bar.value = Math.min(items.length, i + batch.length);
      status.textContent = `${fmtNum(bar.value)} of ${fmtNum(items.length)} lines sent`;
    }
    errors.sort((a, b) => a.line - b.line);
    report.append(h('p', { text: `${fmtNum(items.length)} accounts read, ${fmtNum(errors.length)} problems.` }),
      table('Per-line errors', ['Line', 'Problem'], errors.map((e) => [String(e.line), e.text]), 'No errors.'));
    btn.disabled = false;
  });
  return h('section', { class: 'card', id: 'import' }, h('h3', { text: 'Import' }),
    h('p', { class: 'muted', text: 'CSV with a header UserID,Tags,<attribute>… (tags separated by ;) or JSON Lines {"UserID":…,"Tags":[…],"Attrs":{…}}.' }),
    field('File', file), btn, bar, status, report);
}
