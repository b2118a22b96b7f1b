// Overview: the app's counters and the 7-day delivery funnel.

import { call } from '../api.js';
import { h, table, fmtNum } from '../dom.js';
import { chartBox, barChart, COLORS } from '../charts.js';

export async function render(main) {
  main.append(h('h2', { text: 'Overview' }));
  const s = await call('timd_ext/app_summary', {});
  main.append(h('div', { class: 'cards' },
    stat('Accounts', s.Accounts, 'stat-accounts'), stat('Devices', s.Devices, 'stat-devices'),
    stat('Online now', s.Online, 'stat-online'), stat('Pushes today', s.PushesToday, 'stat-pushes')));
  const f = s.Funnel;
  main.append(h('h3', { text: 'Delivery funnel, last 7 days' }),
    h('p', { id: 'funnel-total' }, `Total ${fmtNum(f.TotalCount)} · sent ${fmtNum(f.SentCount)} · delivered ${fmtNum(f.DeliveredCount)} · clicked ${fmtNum(f.ClickCount)}`));
  const { box, canvas } = chartBox('Daily delivery funnel for the last 7 days');
  main.append(box);
  const days = s.Days || [];
  const chart = barChart(canvas, days.map((d) => d.Date.slice(5)), [
    { label: 'Total', data: days.map((d) => d.TotalCount), color: COLORS.total },
    { label: 'Sent', data: days.map((d) => d.SentCount), color: COLORS.sent },
    { label: 'Delivered', data: days.map((d) => d.DeliveredCount), color: COLORS.delivered },
    { label: 'Clicked', data: days.map((d) => d.ClickCount), color: COLORS.clicked },
  ]);
  main.append(h('details', {}, h('summary', { text: 'Funnel as a table' }),
    table('', ['Day', 'Total', 'Sent', 'Delivered', 'Clicked'],
      days.map((d) => [d.Date, fmtNum(d.TotalCount), fmtNum(d.SentCount), fmtNum(d.DeliveredCount), fmtNum(d.ClickCount)]))));
  return () => chart && chart.destroy();
}

function stat(label, n, id) {
  return h('div', { class: 'stat', id }, h('span', { class: 'n', text: fmtNum(n) }), h('span', { class: 'l', text: label }));
}
