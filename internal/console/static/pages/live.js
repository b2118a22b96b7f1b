// Live: connections, pushes per second and the webhook backlog, polled
// every 3 seconds.

import { call } from '../api.js';
import { h, fmtNum, errorBox } from '../dom.js';
import { chartBox, lineChart, COLORS } from '../charts.js';

export const POLL_MS = 3000;

export async function render(main) {
  main.append(h('h2', { text: 'Live' }));
  const online = h('span', { class: 'n', id: 'live-online', text: '…' });
  const rate = h('span', { class: 'n', id: 'live-rate', text: '…' });
  const running = h('span', { class: 'n', id: 'live-running', text: '…' });
  const hooks = h('span', { class: 'n', id: 'live-hooks', text: '…' });
  const err = h('div', { 'aria-live': 'polite' });
  const stat = (n, l) => h('div', { class: 'stat' }, n, h('span', { class: 'l', text: l }));
  main.append(h('div', { class: 'cards' }, stat(online, 'Online now'), stat(rate, 'Pushes/s (recipients)'), stat(running, 'Tasks fanning out'), stat(hooks, 'Webhook backlog (tasks)')), err);
  const { box, canvas } = chartBox('Online accounts and pushes per second, last few minutes');
  main.append(box, h('p', { class: 'muted', text: `Updates every ${POLL_MS / 1000} s.` }));
  const chart = lineChart(canvas, [{ label: 'Online', color: COLORS.online }, { label: 'Pushes/s', color: COLORS.sent }]);
  let prev = null; let stopped = false; let timer = 0;
  async function tick() {
    try {
      const r = await call('timd_ext/live', {});
      let perSec = 0;
      if (prev && r.Time > prev.Time && r.SentToday >= prev.SentToday) perSec = (r.SentToday - prev.SentToday) * 1000 / (r.Time - prev.Time);
      prev = r;
      online.textContent = fmtNum(r.Online);
      rate.textContent = perSec.toFixed(1);
      running.textContent = fmtNum(r.Running);
      hooks.textContent = fmtNum(r.HookPending);
      err.replaceChildren();
      if (chart) {
        chart.data.labels.push(new Date(r.Time).toLocaleTimeString());
        chart.data.datasets[0].data.push(r.Online);
        chart.data.datasets[1].data.push(perSec);
        if (chart.data.labels.length > 60) { chart.data.labels.shift(); for (const d of chart.data.datasets) d.data.shift(); }
        chart.update();
      }
    } catch (e) {
      err.replaceChildren(errorBox(e));
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  }
  await tick();
  return () => { stopped = true; clearTimeout(timer); if (chart) chart.destroy(); };
}
