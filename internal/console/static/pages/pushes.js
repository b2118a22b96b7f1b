// Pushes: history with each task's funnel and per-platform counts, the
// trace of one user, revoke, and the scheduled tasks (modify, delete).

import { call, current } from '../api.js';
import { h, clear, table, field, errorBox, fmtTime, fmtNum } from '../dom.js';
import { chartBox, barChart, COLORS } from '../charts.js';
import * as device from './device.js';

export async function render(main, onError) {
  main.append(h('h2', { text: 'Pushes' }));
  const charts = [];
  const detail = h('section', { class: 'card', id: 'task-detail', hidden: true });
  const hist = h('section', { class: 'card', id: 'history' });
  const sched = h('section', { class: 'card', id: 'scheduled' });
  main.append(h('div', { class: 'split' }, h('div', {}, hist, detail, traceSection(onError), sched), h('aside', {}, device.panel())));

  async function loadHistory() {
    const r = await call('timd_ext/push_history', { Limit: 50 });
    const rows = r.Tasks.map((t) => {
      const o = t.OfflinePushInfo || {};
      return [
        h('button', { type: 'button', class: 'link', text: t.TaskId, onclick: () => showTask(t) }),
        t.Kind, fmtTime(t.CreatedAt), o.Title || '', h('span', { class: `state ${t.State}`, text: t.State }),
        fmtNum(t.TotalCount), fmtNum(t.SentCount), fmtNum(t.DeliveredCount), fmtNum(t.ClickCount),
        t.State === 'revoked' ? '' : h('button', { type: 'button', class: 'small danger', text: 'Revoke', 'aria-label': `Revoke ${t.TaskId}`, onclick: () => revoke(t) }),
      ];
    });
    clear(hist).append(h('h3', { text: 'History (last 7 days)' }), h('button', { type: 'button', text: 'Refresh', onclick: () => loadHistory().catch(onError) }),
      table('', ['TaskId', 'Kind', 'Created', 'Title', 'State', 'Total', 'Sent', 'Delivered', 'Clicked', ''], rows, 'No pushes in the last 7 days.'));
    const want = new URLSearchParams(location.hash.split('?')[1] || '').get('task');
    const t = want && r.Tasks.find((x) => x.TaskId === want);
    if (t && detail.hidden) showTask(t);
  }

  async function showTask(t) {
    while (charts.length) { const c = charts.pop(); if (c) c.destroy(); }
    detail.hidden = false;
    clear(detail).append(h('h3', {}, 'Task ', h('code', { text: t.TaskId })),
      h('p', { text: `${t.Kind}, ${t.State}, created ${fmtTime(t.CreatedAt)}, webhook ${t.Webhook}` }));
    const f = chartBox(`Funnel of task ${t.TaskId}`);
    detail.append(h('h4', { text: 'Funnel' }), f.box);
    charts.push(barChart(f.canvas, ['Total', 'Sent', 'Delivered', 'Clicked'], [{ label: 'Recipients', data: [t.TotalCount, t.SentCount, t.DeliveredCount, t.ClickCount], color: COLORS.sent }]));
    if (t.Kind === 'batch') return;
    try {
      const now = Math.floor(Date.now() / 1000);
      const s = await call('timpush/all_member_push_statistics', { StartTime: now - 30 * 86400 + 60, EndTime: now + 60, TaskID: [t.TaskId] });
      const plats = (s.Results[0] && s.Results[0].PlatformStatistics) || [];
      const label = (p) => `${p.EventType === 2 ? 'online' : 'offline'} · platform ${p.PushPlatform}`;
      const p = chartBox(`Per-platform counts of task ${t.TaskId}`);
      detail.append(h('h4', { text: 'Per platform' }), p.box,
        table('', ['Channel', 'Total', 'Sent', 'Delivered', 'Clicked'], plats.map((x) => [label(x), fmtNum(x.TotalCount), fmtNum(x.SentCount), fmtNum(x.DeliveredCount), fmtNum(x.ClickCount)])));
      charts.push(barChart(p.canvas, plats.map(label), [
        { label: 'Total', data: plats.map((x) => x.TotalCount), color: COLORS.total },
        { label: 'Sent', data: plats.map((x) => x.SentCount), color: COLORS.sent },
        { label: 'Delivered', data: plats.map((x) => x.DeliveredCount), color: COLORS.delivered },
        { label: 'Clicked', data: plats.map((x) => x.ClickCount), color: COLORS.clicked },
      ]));
    } catch (e) { detail.append(errorBox(e)); }
  }

  async function revoke(t) {
    if (!window.confirm(`Revoke ${t.TaskId}? Clients drop it and stored copies are withdrawn.`)) return;
    try {
      await call('timpush/revoke', { TaskId: t.TaskId, OfflinePushInfo: { Title: 'Withdrawn' } });
      await loadHistory();
    } catch (e) { onError(e); }
  }

  async function loadSched() {
    const app = Number(current().sdkAppId);
    const r = await call('timpush/list_sched_task', { Sdkappid: app, Offset: 0, Want: 50, OrderBy: 'schedAt' });
    const rows = (r.Tasks || []).map((t) => {
      const at = h('input', { value: t.SchedAt, 'aria-label': `New time of task ${t.TaskID} (UTC)`, size: 19 });
      const status = h('span', {});
      const pending = t.Status === 'pending';
      return [String(t.TaskID), t.Type, t.Title || '', `${t.SchedAt} UTC`, t.Status, pending ? h('span', { class: 'inline' }, at,
        h('button', { type: 'button', class: 'small', text: 'Move', onclick: async () => {
          try { await call('timpush/modify_sched_task', { Sdkappid: app, TaskID: t.TaskID, Type: t.Type, SchedAt: at.value.trim() }); await loadSched(); } catch (e) { status.replaceChildren(errorBox(e)); }
        } }),
        h('button', { type: 'button', class: 'small danger', text: 'Delete', onclick: async () => {
          if (!window.confirm(`Delete scheduled task ${t.TaskID}?`)) return;
          try { await call('timpush/delete_sched_task', { Sdkappid: app, TaskID: t.TaskID, Type: t.Type }); await loadSched(); } catch (e) { status.replaceChildren(errorBox(e)); }
        } }), status) : ''];
    });
    clear(sched).append(h('h3', { text: `Scheduled tasks (${fmtNum(r.Total)})` }),
      table('', ['Task', 'Type', 'Title', 'At', 'Status', 'Change'], rows, 'No scheduled tasks.'));
  }

  await Promise.all([loadHistory(), loadSched()]);
  return () => { for (const c of charts) if (c) c.destroy(); };
}

function traceSection(onError) {
  const task = h('input', { name: 'trace-task', autocomplete: 'off' });
  const user = h('input', { name: 'trace-user', autocomplete: 'off' });
  const out = h('div', {});
  const form = h('form', { class: 'inline' }, field('TaskId', task), field('UserID', user), h('button', { type: 'submit', text: 'Trace' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await call('timpush/all_member_push_trace', { TaskID: task.value.trim(), UserID: user.value.trim() });
      const rows = (r.InstanceTrace || []).map((i) => [i.To_Account || '', i.PushTime || '', JSON.stringify(i.IMStat || {}), JSON.stringify(i.OfflineStat || {})]);
      out.replaceChildren(table('', ['Account', 'Pushed', 'IMStat', 'OfflineStat'], rows, 'The user was not in this push\'s audience.'));
    } catch (e) { out.replaceChildren(errorBox(e)); if (e.kind === 'expired') onError(e); }
  });
  return h('section', { class: 'card' }, h('h3', { text: 'Trace one user' }), form, out);
}
