// The dedup story as an SVG line chart: each snapshot's logical size
// against the bytes the repository actually stores (cumulative), over time.

import { bytes, count, time, el, labelCells } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
/** The drawing's width on a wide screen; a narrower box is drawn at its own width (text stays 12 px). */
const W_WIDE = 900;
const W_LEAST = 280;
const H = 380;
const M = { top: 20, right: 24, bottom: 56, left: 84 };
/** Room kept between two tick labels, and the height of a line of a wrapped label. */
const LABEL_GAP = 12;
const LINE = 15;

let measurer = null;
/** The width of `text` in the chart's 12 px labels (font from `box`). */
function textWidth(text, box) {
  if (!measurer) measurer = document.createElement('canvas').getContext('2d');
  measurer.font = `12px ${getComputedStyle(box).fontFamily}`;
  return measurer.measureText(text).width;
}

/** `text` cut into lines of at most `width`, at any character (none is lost). */
function wrapText(text, width, box) {
  const lines = [];
  let line = '';
  for (const ch of text) {
    if (line && textWidth(line + ch, box) > width) {
      lines.push(line);
      line = '';
    }
    line += ch;
  }
  if (line) lines.push(line);
  return lines;
}

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** Round tick steps in bytes: 1, 2 or 5 times a power of 1024 (or of 10 within it). */
function byteTicks(max) {
  if (!(max > 0)) return { step: 1, top: 1 };
  const raw = max / 5;
  let unit = 1;
  while (raw / unit >= 1024) unit *= 1024;
  const scaled = raw / unit;
  const pow = 10 ** Math.floor(Math.log10(scaled));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((m) => m >= scaled) || 10 * pow;
  const step = Math.max(1, nice * unit);
  return { step, top: Math.ceil(max / step) * step };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Round steps between time ticks, each at most 2.5 times the one before. */
const TIME_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY,
];
/** Beyond two weeks, steps are calendar months: ticks fall on the 1st. */
const MONTH_STEPS = [1, 2, 3, 6, 12, 24, 60, 120];

/**
 * Tick times between t0 and t1 at whole multiples of a round step (UTC),
 * at most `most` of them, and that step.
 */
export function timeTicks(t0, t1, most = 7) {
  const span = t1 - t0;
  const step = TIME_STEPS.find((s) => span / s <= most - 1);
  const times = [];
  if (step !== undefined) {
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) times.push(t);
    return { times, step };
  }
  const months = MONTH_STEPS.find((m) => span / (m * 30.44 * DAY) <= most - 1) ?? 120;
  const start = new Date(t0);
  let index = start.getUTCFullYear() * 12 + start.getUTCMonth();
  index = Math.ceil(index / months) * months;
  for (let t = Date.UTC(Math.floor(index / 12), index % 12, 1); t <= t1; index += months, t = Date.UTC(Math.floor(index / 12), index % 12, 1)) {
    if (t >= t0) times.push(t);
  }
  return { times, step: months * 30 * DAY };
}

/** A tick's label, as precise as its step needs: no two ticks read the same. */
export function timeLabel(ms, step, span) {
  const iso = new Date(ms).toISOString();
  if (step < SECOND) return iso.slice(11, 23);
  if (step < MINUTE) return iso.slice(11, 19);
  if (step < DAY) return span >= DAY ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
  if (span < 300 * DAY) return iso.slice(5, 10);
  return iso.slice(0, 10);
}

export function createChart(app) {
  const box = document.getElementById('chart');
  const legend = document.getElementById('chart-legend');
  const facts = document.getElementById('stats');
  const tableBox = document.getElementById('chart-table');
  let drawn = false;
  /** Whether the statistics are shown; they are asked for again after a failure. */
  let statsShown = false;
  let loading = 0;
  /** The width drawn at: the chart is drawn again when its box narrows or widens. */
  let drawnWidth = 0;
  new ResizeObserver(() => {
    const w = Math.min(W_WIDE, box.clientWidth);
    if (drawn && app.points.length && w > 0 && w !== drawnWidth) draw(app.points);
  }).observe(box);

  /**
   * A tick label at `x`: centred on its tick, unless that would stick out
   * of the drawing (`width` wide); then it ends (or starts) at its tick.
   */
  function placeLabel(ms, x, label, width) {
    const w = textWidth(label, box);
    const anchor = x + w / 2 > width ? 'end' : x - w / 2 < 0 ? 'start' : 'middle';
    const left = anchor === 'end' ? x - w : anchor === 'start' ? x : x - w / 2;
    return { ms, x, label, anchor, left, right: left + w };
  }

  /** The time ticks: as many as fit the plot without two labels touching. */
  function fitTicks(t0, t1, pw, width) {
    const span = t1 - t0;
    for (let most = 7; most >= 2; most--) {
      const { times, step } = timeTicks(t0, t1, most);
      const labels = times.map((ms) => placeLabel(ms, M.left + ((ms - t0) / span) * pw, timeLabel(ms, step, span), width));
      const fits = labels.every((l, k) => k === 0 || labels[k - 1].right + LABEL_GAP <= l.left);
      // Two ticks that still touch: the first alone.
      if (fits) return labels;
      if (most === 2) return labels.slice(0, 1);
    }
    return [];
  }

  function draw(points) {
    const W = Math.max(W_LEAST, Math.min(W_WIDE, box.clientWidth || W_WIDE));
    drawnWidth = Math.min(W_WIDE, box.clientWidth);
    const pw = W - M.left - M.right;
    const ph = H - M.top - M.bottom;
    const n = points.length;
    const t0 = n ? points[0].start_time_in_millis : 0;
    const t1 = n ? points[n - 1].start_time_in_millis : 1;
    const span = t1 - t0;
    // Snapshots taken at the same millisecond still get their own place.
    const x = (p, i) => M.left + (n <= 1 ? pw / 2 : span > 0 ? ((p.start_time_in_millis - t0) / span) * pw : (i / (n - 1)) * pw);
    // A loop, not Math.max(...points): spreading a huge array overflows the stack.
    let maxY = 1;
    for (const p of points) maxY = Math.max(maxY, p.logical_bytes, p.stored_bytes);
    const { step, top } = byteTicks(maxY);
    const y = (v) => M.top + ph - (v / top) * ph;

    const last = points[n - 1];
    const title = svg('title', { id: 'chart-title' });
    title.textContent = 'Logical size of each snapshot against bytes stored in the repository';
    const desc = svg('desc', { id: 'chart-desc' });
    desc.textContent = n
      ? `${n} snapshot${n === 1 ? '' : 's'} from ${time(t0)} to ${time(t1)}. The newest, ${last.snapshot}, holds ${bytes(last.logical_bytes)} of data; ` +
        `all snapshots together hold ${bytes(points.reduce((a, p) => a + p.logical_bytes, 0))}, for which the repository stores ${bytes(last.stored_bytes)}.`
      : 'No snapshots yet.';

    const grid = svg('g', { class: 'grid' });
    for (let k = 0; k * step <= top + step / 2; k++) {
      const v = k * step;
      const yy = y(v);
      grid.append(svg('line', { x1: M.left, x2: W - M.right, y1: yy, y2: yy }));
      const label = svg('text', { x: M.left - 8, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle' });
      label.textContent = bytes(v);
      grid.append(label);
    }
    const xAxis = svg('g', { class: 'axis' });
    xAxis.append(svg('line', { x1: M.left, x2: W - M.right, y1: M.top + ph, y2: M.top + ph }));
    // Ticks at round times (whole hours, days, ...); with no time span,
    // one tick at the snapshots' common time.
    const ticks = span > 0 ? fitTicks(t0, t1, pw, W) : n ? [placeLabel(t0, M.left + pw / 2, timeLabel(t0, SECOND, 0), W)] : [];
    for (const { ms, x: xx, label: text, anchor } of ticks) {
      xAxis.append(svg('line', { x1: xx, x2: xx, y1: M.top + ph, y2: M.top + ph + 5 }));
      const label = svg('text', { x: xx, y: M.top + ph + 20, 'text-anchor': anchor, class: 'tick', 'data-ms': ms });
      label.textContent = text;
      xAxis.append(label);
    }
    const xTitle = svg('text', { x: M.left + pw / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis-title' });
    xTitle.textContent = `Snapshot start time (UTC${span < 2 * 86400000 && n ? `, ${new Date(t0).toISOString().slice(0, 10)}` : ''})`;
    const yTitle = svg('text', {
      x: -(M.top + ph / 2),
      y: 16,
      transform: 'rotate(-90)',
      'text-anchor': 'middle',
      class: 'axis-title',
    });
    yTitle.textContent = 'Bytes';

    const line = (key) => points.map((p, i) => `${x(p, i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
    const area = n
      ? `M${x(points[0], 0).toFixed(1)},${y(0)} L${line('stored_bytes').replace(/ /g, ' L')} L${x(last, n - 1).toFixed(1)},${y(0)} Z`
      : '';
    const series = svg(
      'g',
      { class: 'series' },
      svg('path', { d: area, class: 'stored-area' }),
      svg('polyline', { points: line('stored_bytes'), class: 'stored' }),
      svg('polyline', { points: line('logical_bytes'), class: 'logical' }),
    );
    if (n <= 300) {
      points.forEach((p, i) => {
        const tip = svg('title');
        tip.textContent = `${p.snapshot} (${time(p.start_time_in_millis)}): ${bytes(p.logical_bytes)} logical, ${bytes(p.new_stored_bytes)} new stored, ${bytes(p.stored_bytes)} stored in all`;
        series.append(svg('circle', { cx: x(p, i), cy: y(p.logical_bytes), r: 4, class: 'logical-dot' }, tip));
        series.append(svg('circle', { cx: x(p, i), cy: y(p.stored_bytes), r: 3.5, class: 'stored-dot' }, tip.cloneNode(true)));
      });
    }
    // The newest snapshot is named on the chart; the others in their tooltips.
    // A name too long for the room left of the point wraps, whole, onto more lines.
    if (n) {
      const right = x(last, n - 1) - 6;
      const lines = wrapText(`${last.snapshot}: ${bytes(last.logical_bytes)}`, Math.max(60, right - M.left), box);
      const top = Math.max(14, y(last.logical_bytes) - 10 - (lines.length - 1) * LINE);
      const name = svg('text', { x: right, y: top, 'text-anchor': 'end', class: 'point-label' });
      lines.forEach((l, k) => {
        const line = svg('tspan', { x: right, dy: k ? LINE : 0 });
        line.textContent = l;
        name.append(line);
      });
      series.append(name);
    }
    const chart = svg(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc', class: 'chart-svg' },
      title,
      desc,
      grid,
      xAxis,
      xTitle,
      yTitle,
      series,
    );

    const table = labelCells(el(
      'table',
      { class: 'data compact cards' },
      el('caption', {}, 'Chart data'),
      el(
        'thead',
        {},
        el('tr', {}, ...['Snapshot', 'Start', 'Logical', 'New stored', 'Stored in all'].map((h) => el('th', { scope: 'col' }, h))),
      ),
      el(
        'tbody',
        {},
        ...points.map((p) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row' }, p.snapshot),
            el('td', {}, time(p.start_time_in_millis)),
            el('td', { class: 'num' }, bytes(p.logical_bytes)),
            el('td', { class: 'num' }, bytes(p.new_stored_bytes)),
            el('td', { class: 'num' }, bytes(p.stored_bytes)),
          ),
        ),
      ),
    ));
    box.replaceChildren(chart);
    tableBox.replaceChildren(el('details', { class: 'chart-data' }, el('summary', {}, 'Show the numbers as a table'), table));
    box.dataset.points = String(n);
    legend.replaceChildren(
      el('span', { class: 'key logical' }, 'Logical size of the snapshot'),
      el('span', { class: 'key stored' }, 'Bytes stored in the repository (cumulative, after dedup and compression)'),
    );
  }

  function fact(label, value) {
    return [el('dt', {}, label), el('dd', {}, value)];
  }

  function showStats(s) {
    const known = [
      ['snapshots', 'Snapshots', count],
      ['logical_bytes', 'Logical bytes (all snapshots)', bytes],
      ['stored_bytes', 'Bytes stored', bytes],
      // An empty repository has no ratio: 0.00× would read as a failure.
      ['dedup_ratio', 'Dedup ratio', (v) => (s.stored_bytes > 0 && s.logical_bytes > 0 ? `${Number(v).toFixed(2)}×` : '— (nothing stored yet)')],
      ['pack_bytes', 'Bytes in packs', bytes],
      ['packs', 'Packs', count],
      ['blobs', 'Blobs', count],
      ['index_files', 'Index files', count],
      ['generation', 'Generation', count],
      ['location', 'Location', String],
    ];
    const items = [];
    const seen = new Set();
    for (const [k, label, f] of known) {
      if (s[k] === undefined) continue;
      seen.add(k);
      items.push(...fact(label, f(s[k])));
    }
    for (const [k, v] of Object.entries(s)) {
      if (seen.has(k) || (typeof v !== 'number' && typeof v !== 'string')) continue;
      const f = typeof v === 'number' && /bytes/.test(k) ? bytes : typeof v === 'number' ? count : String;
      items.push(...fact(k.replace(/_/g, ' '), f(v)));
    }
    facts.replaceChildren(...items);
  }

  return {
    reset() {
      loading++;
      drawn = false;
      statsShown = false;
      box.replaceChildren();
      delete box.dataset.points;
      legend.replaceChildren();
      tableBox.replaceChildren();
      facts.replaceChildren();
    },
    async show() {
      if (!drawn) {
        drawn = true;
        if (app.points.length) draw(app.points);
        else {
          box.replaceChildren(el('p', { class: 'empty' }, 'No snapshots yet: nothing to chart.'));
          box.dataset.points = '0';
        }
      }
      if (statsShown) return;
      const mine = ++loading;
      await app.busy('Reading repository statistics…', async () => {
        const stats = await app.call('stats');
        if (mine !== loading) return;
        showStats(stats);
        statsShown = true;
        app.status('');
      }, 'Could not read the statistics');
    },
  };
}
