// What changed between two snapshots: counts, and a virtualised list of
// added, removed, modified and metadata-only paths (computed in the worker).

import { bytes, count, el, fillSelect } from './format.js';
import { VirtualList } from './vlist.js';

const CHANGES = ['added', 'removed', 'modified', 'metadata'];
const TYPES = ['file', 'dir', 'symlink', 'other'];

export function createDiff(app) {
  const $ = (id) => document.getElementById(id);
  const form = $('diff-form');
  const from = $('diff-from');
  const to = $('diff-to');
  const show = $('diff-show');
  const counts = $('diff-counts');
  const listEl = $('diff-list');
  const viewport = $('diff-viewport');

  /** The diff shown, as columns, and the row numbers the filter keeps. */
  let diff = null;
  let rows = [];
  let loading = 0;
  /** After a refresh: compare the same snapshots again when shown. */
  let rerun = false;
  // Next to the table, not in it: a role=table holds only rowgroups.
  const empty = el('p', { class: 'empty', hidden: true }, '');
  listEl.after(empty);

  const list = new VirtualList(viewport, { rowHeight: 32, renderRow, threshold: 500 });

  function size(v) {
    return Number.isNaN(v) ? '' : bytes(v);
  }

  function renderRow(k) {
    const i = rows[k];
    const change = CHANGES[diff.changes[i]];
    const path = diff.paths[i];
    const oldSize = diff.oldSizes[i];
    const newSize = diff.newSizes[i];
    const attrs = { testid: 'diff-row', path, change, type: TYPES[diff.types[i]] };
    if (!Number.isNaN(oldSize)) attrs.oldSize = String(oldSize);
    if (!Number.isNaN(newSize)) attrs.newSize = String(newSize);
    return el(
      'div',
      { role: 'row', class: `vrow diff-cols change-${change}`, 'aria-rowindex': k + 2, dataset: attrs },
      el('span', { role: 'cell' }, el('span', { class: `badge ${change}` }, change)),
      el('span', { role: 'cell', class: 'path', title: path }, path),
      el('span', { role: 'cell' }, TYPES[diff.types[i]] === 'dir' ? 'folder' : TYPES[diff.types[i]]),
      el('span', { role: 'cell', class: 'num', title: Number.isNaN(oldSize) ? '' : `${count(oldSize)} bytes` }, size(oldSize)),
      el('span', { role: 'cell', class: 'num', title: Number.isNaN(newSize) ? '' : `${count(newSize)} bytes` }, size(newSize)),
    );
  }

  function applyFilter() {
    if (!diff) return;
    const want = show.value;
    if (want === 'all') rows = Array.from({ length: diff.count }, (_, i) => i);
    else {
      const code = CHANGES.indexOf(want);
      rows = [];
      for (let i = 0; i < diff.count; i++) if (diff.changes[i] === code) rows.push(i);
    }
    listEl.setAttribute('aria-rowcount', String(rows.length + 1));
    listEl.dataset.count = String(rows.length);
    list.setCount(rows.length);
    empty.hidden = rows.length !== 0;
    empty.textContent = diff.count ? `No ${want} paths.` : `${diff.from} and ${diff.to} hold the same files.`;
  }

  function renderCounts() {
    const c = diff.counts;
    counts.replaceChildren(
      ...CHANGES.flatMap((k) => [
        el('dt', { class: `badge ${k}` }, k),
        el('dd', { dataset: { field: k, value: String(c[k] ?? 0) } }, count(c[k] ?? 0)),
      ]),
    );
  }

  async function run() {
    if (!from.value || !to.value) return;
    const mine = ++loading;
    listEl.setAttribute('aria-busy', 'true');
    await app.busy(`Comparing ${from.value} with ${to.value}…`, async () => {
      const v = await app.request('diffView', from.value, to.value);
      if (mine !== loading) return;
      diff = { ...v, paths: v.count ? v.paths.split('\0') : [] };
      listEl.dataset.from = diff.from;
      listEl.dataset.to = diff.to;
      renderCounts();
      applyFilter();
      app.status(`${diff.from} → ${diff.to}: ${count(diff.count)} changes.`);
    }, 'Could not compare the snapshots');
    if (mine === loading) listEl.removeAttribute('aria-busy');
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
  show.addEventListener('change', applyFilter);

  return {
    /** Forgets what is shown (answers still on their way are dropped); `keep` keeps the chosen snapshots if they still exist. */
    reset({ keep = false } = {}) {
      loading++;
      const had = keep && from.value && to.value ? [from.value, to.value] : null;
      const wasShown = diff !== null;
      diff = null;
      rows = [];
      list.setCount(0);
      empty.hidden = true;
      counts.replaceChildren();
      listEl.removeAttribute('aria-busy');
      delete listEl.dataset.count;
      delete listEl.dataset.from;
      delete listEl.dataset.to;
      const newestFirst = [...app.names].reverse();
      fillSelect(from, newestFirst, { keep: false });
      fillSelect(to, newestFirst, { keep: false });
      rerun = false;
      if (had && app.names.includes(had[0]) && app.names.includes(had[1])) {
        [from.value, to.value] = had;
        rerun = wasShown;
      } else {
        // Default: the newest snapshot against the one before it.
        if (app.names.length > 1) from.value = app.names[app.names.length - 2];
        show.value = 'all';
      }
    },
    async show(options = {}) {
      if (options.from) from.value = options.from;
      if (options.to) to.value = options.to;
      if (options.from || options.to || rerun) {
        rerun = false;
        await run();
      }
    },
  };
}
