// Formatting and small DOM helpers shared by the views.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '—';
  let v = Number(n);
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${UNITS[u]}`;
}

/** Thousands separators, no locale surprises: 1234567 → "1,234,567". */
export function count(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '—';
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Milliseconds → "83 ms", "4.2 s", "3 min 5 s", "2 h 5 min". */
export function duration(ms) {
  if (ms === undefined || ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Epoch milliseconds → "2026-11-25 12:46:35 UTC". */
export function time(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Unix mode bits → "rwxr-xr-x". */
export function mode(m) {
  if (!m) return '';
  const bits = 'rwxrwxrwx';
  let s = '';
  for (let i = 0; i < 9; i++) s += m & (1 << (8 - i)) ? bits[i] : '-';
  return s;
}

/**
 * Creates an element: el('td', {class: 'num', dataset: {field: 'size'}},
 * 'text', child). Attributes named on* are listeners and must be functions
 * (never inline handler text); `style` attributes are refused too (the
 * Content-Security-Policy blocks them: set element.style instead).
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (/^on/i.test(k)) {
      if (typeof v !== 'function') throw new TypeError(`el(): ${k} must be a function, not ${typeof v}`);
      e.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k.toLowerCase() === 'style') throw new TypeError('el(): set element.style instead of a style attribute');
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** Fills a <select> with options, keeping the chosen value when possible. */
export function fillSelect(select, values, { keep = true, labels = {} } = {}) {
  const old = select.value;
  select.replaceChildren(...values.map((v) => el('option', { value: v }, labels[v] ?? v)));
  if (keep && values.includes(old)) select.value = old;
}

/**
 * Labels each body cell with its column's header (data-label), which a
 * narrow screen shows when the table becomes one card per row.
 */
export function labelCells(table) {
  const heads = [...table.querySelectorAll('thead th')].map((th) => th.dataset.label || th.textContent.trim());
  for (const tr of table.querySelectorAll('tbody tr')) {
    [...tr.children].forEach((cell, k) => {
      if (cell.tagName === 'TD' && heads[k] && !cell.hasAttribute('colspan')) cell.dataset.label = heads[k];
    });
  }
  return table;
}
