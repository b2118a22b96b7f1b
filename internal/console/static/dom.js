// DOM helpers. Text from data is only ever set as text (Text nodes,
// textContent, attribute values): nothing is parsed as HTML, so a UserID
// or tag holding markup shows as the characters it is.

/** h creates an element: props are attributes, "text", "class" or on<event> handlers; children are nodes or strings. */
export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'value') e.value = v;
    else if (k === 'checked') e.checked = Boolean(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** clear removes every child of e. */
export function clear(e) {
  while (e.firstChild) e.firstChild.remove();
  return e;
}

/** table builds a table: head is the column titles, rows arrays of cells (strings or nodes). */
export function table(caption, head, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'muted', text: empty });
  return h('div', { class: 'scroll' }, h('table', {},
    caption ? h('caption', { text: caption }) : null,
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

/** errorBox shows a failed call: its code and ErrorInfo, or why timd was not reached. */
export function errorBox(err) {
  const box = h('div', { class: 'error', role: 'alert' });
  if (err && err.kind === 'refused') {
    box.append(h('strong', { text: `Refused by timd: error ${err.code}` }), h('br'), h('span', { class: 'info', text: err.info }));
  } else if (err && err.kind === 'expired') {
    box.append(h('strong', { text: 'Your UserSig has expired or was revoked' }), h('br'),
      `${err.code ? `error ${err.code}: ` : ''}${err.info} Sign in again.`);
  } else if (err && err.kind === 'unreachable') {
    box.append(h('strong', { text: 'Server unreachable' }), h('br'), err.info);
  } else {
    box.append(h('strong', { text: 'Error' }), h('br'), String(err && err.message ? err.message : err));
  }
  return box;
}

/** field is a labelled form control. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), control,
    hint ? h('small', { class: 'muted', text: hint }) : null);
}

/** fmtTime shows unix seconds as local date and time. */
export function fmtTime(sec) {
  if (!sec) return '';
  return new Date(sec * 1000).toLocaleString();
}

/** fmtNum shows a count with grouping. */
export function fmtNum(n) {
  return typeof n === 'number' ? n.toLocaleString() : String(n ?? '');
}
