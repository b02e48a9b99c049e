// The file browser: one folder level of an index (or the global state) at a
// time, from the worker as columns, shown in a virtualised list so a folder
// of 100,000 entries renders only the rows in view. Files download in
// windows read by the worker (hash-verified in the core), as a Blob.

import { bytes, count, mode, time, el, fillSelect } from './format.js';
import { VirtualList } from './vlist.js';

const GLOBAL = '_global_state';
const TYPE_NAMES = ['file', 'dir', 'symlink', 'other'];

export function createTree(app) {
  const $ = (id) => document.getElementById(id);
  const snapSelect = $('tree-snapshot');
  const indexSelect = $('tree-index');
  const crumbs = $('crumbs');
  const countEl = $('tree-count');
  const tree = $('tree');
  const viewport = $('tree-viewport');

  /** The folder shown: {snapshot, index, path, count, names[], types, sizes, mtimes, modes, targets}. */
  let level = null;
  let loading = 0;
  const indicesOf = new Map();

  // Next to the table, not in it: a role=table holds only rowgroups.
  const empty = el('p', { class: 'empty', hidden: true }, 'This folder is empty.');
  tree.after(empty);
  const list = new VirtualList(viewport, { rowHeight: 34, renderRow, threshold: 400 });

  function renderRow(i) {
    const name = level.names[i];
    const type = TYPE_NAMES[level.types[i]];
    const isDir = type === 'dir';
    const full = level.path ? `${level.path}/${name}` : name;
    const label = isDir
      ? el('button', { type: 'button', class: 'link entry dir', onclick: () => open(full), title: `Open ${name}` }, el('span', { class: 'icon', 'aria-hidden': 'true' }), name)
      : el('span', { class: `entry ${type}` }, el('span', { class: 'icon', 'aria-hidden': 'true' }), name);
    const target = level.targets[i];
    const action =
      type === 'file'
        ? el('button', { type: 'button', class: 'small', dataset: { testid: 'download' }, 'aria-label': `Download ${name}`, onclick: () => download(full, name) }, 'Download')
        : '';
    const mt = level.mtimes[i];
    return el(
      'div',
      {
        role: 'row',
        class: 'vrow tree-cols',
        'aria-rowindex': i + 2,
        dataset: { testid: 'tree-row', name, type, size: String(level.sizes[i]) },
      },
      el('span', { role: 'cell', class: 'name', title: target ? `${name} → ${target}` : name }, label, target ? el('span', { class: 'muted' }, ` → ${target}`) : ''),
      el('span', { role: 'cell' }, type === 'dir' ? 'folder' : type),
      el('span', { role: 'cell', class: 'num', title: `${count(level.sizes[i])} bytes` }, isDir ? '' : bytes(level.sizes[i])),
      el('span', { role: 'cell', class: 'mono' }, mode(level.modes[i] & 0o777)),
      el('span', { role: 'cell' }, mt ? time(mt) : ''),
      el('span', { role: 'cell' }, action),
    );
  }

  function describeCounts(lv) {
    const kinds = [0, 0, 0, 0];
    for (let i = 0; i < lv.count; i++) kinds[lv.types[i]]++;
    const parts = [
      [kinds[0], 'file', 'files'],
      [kinds[1], 'folder', 'folders'],
      [kinds[2], 'symlink', 'symlinks'],
      [kinds[3], 'other', 'other'],
    ]
      .filter(([n]) => n > 0)
      .map(([n, one, many]) => `${count(n)} ${n === 1 ? one : many}`);
    return `${count(lv.count)} entr${lv.count === 1 ? 'y' : 'ies'}${parts.length ? `: ${parts.join(', ')}` : ''}`;
  }

  function renderCrumbs() {
    const items = [];
    const idxLabel = level.index === GLOBAL ? 'global state' : level.index;
    const parts = level.path ? level.path.split('/') : [];
    const steps = [{ label: idxLabel, path: '' }, ...parts.map((p, i) => ({ label: p, path: parts.slice(0, i + 1).join('/') }))];
    steps.forEach((s, i) => {
      const last = i === steps.length - 1;
      items.push(
        el(
          'li',
          {},
          last
            ? el('span', { 'aria-current': 'location' }, s.label)
            : el('button', { type: 'button', class: 'link', onclick: () => open(s.path) }, s.label),
        ),
      );
    });
    crumbs.replaceChildren(...items);
  }

  async function open(path, { focus = true } = {}) {
    const snapshot = snapSelect.value;
    const index = indexSelect.value;
    if (!snapshot || !index) return;
    const mine = ++loading;
    tree.setAttribute('aria-busy', 'true');
    await app.busy(`Reading ${index}/${path}…`, async () => {
      const v = await app.request('treeView', snapshot, index, path);
      if (mine !== loading) return;
      level = { ...v, names: v.count ? v.names.split('\0') : [] };
      countEl.textContent = describeCounts(level);
      countEl.dataset.value = String(level.count);
      tree.setAttribute('aria-rowcount', String(level.count + 1));
      tree.dataset.snapshot = snapshot;
      tree.dataset.index = index;
      tree.dataset.path = level.path;
      renderCrumbs();
      list.setCount(level.count);
      empty.hidden = level.count !== 0;
      app.status(`${index}${level.path ? `/${level.path}` : ''}: ${count(level.count)} entries.`);
      if (focus && level.count) list.focusRow(0);
    }, `Could not read ${index}/${path}`);
    if (mine === loading) tree.removeAttribute('aria-busy');
  }

  /** Past this size a download says how far it is. */
  const SHOW_PROGRESS = 32 << 20;

  async function download(path, name) {
    const snapshot = level.snapshot;
    const index = level.index;
    await app.busy(`Downloading ${name}…`, async () => {
      // The worker posts the file in windows; each becomes a Blob at once,
      // so the page's heap holds at most one window (the browser keeps
      // large Blobs out of it, on disk if need be).
      const parts = [];
      let received = 0;
      let shown = 0;
      const onPart = (part) => {
        if (part.offset !== received) throw new Error(`part at byte ${part.offset}, expected ${received}`);
        parts.push(new Blob([part.bytes]));
        received += part.bytes.byteLength;
        const now = Date.now();
        if (part.size > SHOW_PROGRESS && (now - shown >= 500 || received === part.size)) {
          shown = now;
          app.status(`Downloading ${name}: ${bytes(received)} of ${bytes(part.size)} (${Math.floor((received / part.size) * 100)}%)…`);
        }
      };
      const { sha256, size } = await app.stream('download', onPart, snapshot, index, path);
      if (received !== size) throw new Error(`received ${received} of ${size} bytes`);
      tree.dataset.sha256 = sha256;
      tree.dataset.size = String(size);
      tree.dataset.file = `${index}/${path}`;
      const url = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
      const a = el('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      // The click has started the download by then; the Blob need not live on.
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      app.status(`Downloaded ${name}: ${count(size)} bytes, SHA-256 ${sha256}.`);
    }, `Could not download ${index}/${path}`);
  }

  async function indicesFor(snapshot) {
    if (!indicesOf.has(snapshot)) {
      const m = await app.call('snapshot', snapshot);
      const list = [...(m.indices || [])].sort();
      if (m.include_global_state || m.global_state_details) list.push(GLOBAL);
      return list;
    }
    return indicesOf.get(snapshot);
  }

  async function chooseSnapshot(snapshot, index, path = '', focus = false) {
    snapSelect.value = snapshot;
    const mine = ++loading;
    const indices = await app.busy(`Reading ${snapshot}…`, () => indicesFor(snapshot), `Could not read ${snapshot}`);
    // Another choice, or another repository, came meanwhile.
    if (!indices || mine !== loading) return;
    indicesOf.set(snapshot, indices);
    fillSelect(indexSelect, indices, { labels: { [GLOBAL]: 'Global state' } });
    if (index && indices.includes(index)) indexSelect.value = index;
    if (!indices.length) {
      level = null;
      list.setCount(0);
      crumbs.replaceChildren();
      countEl.textContent = 'This snapshot has no indices.';
      return;
    }
    await open(path, { focus });
  }

  snapSelect.addEventListener('change', () => chooseSnapshot(snapSelect.value));
  indexSelect.addEventListener('change', () => open('', { focus: false }));

  return {
    /** Forgets what is shown (answers still on their way are dropped); `keep` keeps the chosen snapshot if it still exists. */
    reset({ keep = false } = {}) {
      loading++;
      level = null;
      indicesOf.clear();
      list.setCount(0);
      empty.hidden = true;
      tree.removeAttribute('aria-busy');
      crumbs.replaceChildren();
      countEl.textContent = '';
      delete tree.dataset.sha256;
      delete tree.dataset.size;
      delete tree.dataset.file;
      fillSelect(snapSelect, [...app.names].reverse(), { keep });
      indexSelect.replaceChildren();
    },
    async show(options = {}) {
      const snapshot = options.snapshot || snapSelect.value || app.names[app.names.length - 1];
      if (!snapshot) {
        countEl.textContent = 'This repository has no snapshots yet.';
        return;
      }
      if (!level || level.snapshot !== snapshot || !indexSelect.options.length) {
        await chooseSnapshot(snapshot, options.index, options.path || '', !!options.index);
      } else if (options.index && options.index !== level.index) {
        indexSelect.value = options.index;
        await open(options.path || '', { focus: true });
      } else if (options.path !== undefined && options.path !== level.path) {
        await open(options.path, { focus: false });
      }
    },
  };
}
