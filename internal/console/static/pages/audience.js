// Audience: the attribute names and the most used tags.

import { call } from '../api.js';
import { h, table, fmtNum } from '../dom.js';
import { chartBox, barChart, COLORS } from '../charts.js';

export async function render(main) {
  main.append(h('h2', { text: 'Audience' }));
  const [names, tags] = await Promise.all([call('timpush/get_attr_name', {}), call('timd_ext/tag_histogram', { Limit: 30 })]);
  const slots = Object.entries(names.AttrNames || {}).filter(([, n]) => n).sort((a, b) => Number(a[0]) - Number(b[0]));
  const types = names.AttrTypes || {};
  main.append(h('section', { class: 'card' }, h('h3', { text: 'Attribute names' }),
    table('', ['Slot', 'Name', 'Account type'], slots.map(([k, n]) => [k, n, types[k] === 1 ? 'RegistrationID' : 'UserID']),
      'No attributes defined: set them with timpush/set_attr_name.')));
  const list = tags.Tags || [];
  const sec = h('section', { class: 'card' }, h('h3', { text: `Most used tags (${fmtNum(tags.Distinct)} distinct)` }));
  let chart = null;
  if (list.length) {
    const { box, canvas } = chartBox('Accounts per tag, most used first');
    sec.append(box);
    chart = barChart(canvas, list.map((t) => t.Tag), [{ label: 'Accounts', data: list.map((t) => t.Count), color: COLORS.sent }], { horizontal: true });
  }
  sec.append(table('', ['Tag', 'Accounts'], list.map((t) => [h('span', { class: 'tag', text: t.Tag }), fmtNum(t.Count)]), 'No tags yet.'));
  main.append(sec);
  return () => chart && chart.destroy();
}
