// Thin wrappers around the vendored Chart.js (vendor/chart.umd.min.js,
// loaded as a classic script that defines window.Chart).

import { h } from './dom.js';

export const COLORS = { total: '#64748b', sent: '#2563eb', delivered: '#16a34a', clicked: '#d97706', online: '#7c3aed' };

/** chartBox returns a sized container with a canvas and a text alternative. */
export function chartBox(label) {
  const canvas = h('canvas', { role: 'img', 'aria-label': label });
  return { box: h('div', { class: 'chart' }, canvas), canvas };
}

/** barChart draws grouped bars; it returns the chart (or null without Chart.js). */
export function barChart(canvas, labels, series, opts = {}) {
  if (!window.Chart) return null;
  return new window.Chart(canvas, {
    type: 'bar',
    data: { labels, datasets: series.map((s) => ({ label: s.label, data: s.data, backgroundColor: s.color })) },
    options: { animation: false, responsive: true, maintainAspectRatio: false, indexAxis: opts.horizontal ? 'y' : 'x',
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { beginAtZero: true } } },
  });
}

/** lineChart draws lines that the caller updates with push(). */
export function lineChart(canvas, series) {
  if (!window.Chart) return null;
  return new window.Chart(canvas, {
    type: 'line',
    data: { labels: [], datasets: series.map((s) => ({ label: s.label, data: [], borderColor: s.color, backgroundColor: s.color, tension: 0.2, pointRadius: 0 })) },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
  });
}
