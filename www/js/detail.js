// One snapshot in detail: its summary, per-index files and bytes (new vs
// reused), global state, metadata and, for a PARTIAL snapshot, failures.

import { bytes, count, duration, time, el, fillSelect, labelCells } from './format.js';

export function createDetail(app) {
  const select = document.getElementById('detail-snapshot');
  const box = document.getElementById('detail');
  let shown = null;
  let loading = 0;

  function fact(label, value, field) {
    return [el('dt', {}, label), el('dd', field ? { dataset: { field } } : {}, value)];
  }

  function indexRow(name, d, { global = false, snapshot } = {}) {
    const reused = Math.max(0, (d.size_in_bytes || 0) - (d.new_bytes || 0));
    const browse = el(
      'button',
      {
        type: 'button',
        class: 'link',
        title: `Browse the files of ${global ? 'the global state' : name}`,
        onclick: () => app.show('tree', { snapshot, index: global ? '_global_state' : name }),
      },
      global ? 'Global state' : name,
    );
    return el(
      'tr',
      { dataset: { index: global ? '_global_state' : name } },
      el('th', { scope: 'row' }, browse),
      el('td', { class: 'num', dataset: { field: 'files', value: String(d.files) } }, count(d.files)),
      el('td', { class: 'num' }, count(d.dirs)),
      el('td', { class: 'num', dataset: { field: 'size', value: String(d.size_in_bytes) } }, bytes(d.size_in_bytes)),
      el('td', { class: 'num', dataset: { field: 'new', value: String(d.new_bytes) } }, bytes(d.new_bytes)),
      el('td', { class: 'num', dataset: { field: 'reused', value: String(reused) } }, bytes(reused)),
      el('td', { class: 'num', dataset: { field: 'new_stored', value: String(d.new_stored_bytes) } }, bytes(d.new_stored_bytes)),
      el('td', { class: 'num' }, count(d.files_read)),
      el('td', {}, bar(d.size_in_bytes, d.new_bytes)),
    );
  }

  /** A small bar: the new share of an index's bytes. */
  function bar(total, fresh) {
    const share = total > 0 ? Math.min(1, fresh / total) : 0;
    const pct = Math.round(share * 100);
    // element.style, not a style attribute: the page's CSP allows no inline styles.
    const fill = el('span', { class: 'share-new' });
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    return el(
      'span',
      { class: 'share', role: 'img', 'aria-label': `${pct}% new, ${100 - pct}% reused`, title: `${pct}% new` },
      fill,
    );
  }

  function render(m) {
    const st = m.stats || {};
    const details = m.index_details || {};
    const reused = Math.max(0, (st.size_in_bytes || 0) - (st.new_bytes || 0));
    const parts = [];
    parts.push(
      el(
        'h2',
        {},
        m.snapshot,
        ' ',
        el('span', { class: `state state-${String(m.state).toLowerCase()}`, dataset: { field: 'state' } }, m.state),
      ),
    );
    parts.push(
      el(
        'dl',
        { class: 'facts' },
        ...fact('UUID', m.uuid),
        ...fact('Started', time(m.start_time_in_millis)),
        ...fact('Ended', time(m.end_time_in_millis)),
        ...fact('Duration', duration(m.duration_in_millis)),
        ...fact('Files', count(st.files), 'files'),
        ...fact('Logical size', bytes(st.size_in_bytes), 'size'),
        ...fact('New data', bytes(st.new_bytes), 'new'),
        ...fact('Reused from earlier snapshots', bytes(reused), 'reused'),
        ...fact('New bytes stored', bytes(st.new_stored_bytes), 'new_stored'),
        ...fact('Shards', m.shards ? `${m.shards.successful} of ${m.shards.total} successful` : '—'),
        ...fact('Global state', m.include_global_state ? 'included' : 'not included'),
      ),
    );
    const rows = Object.keys(details)
      .sort()
      .map((name) => indexRow(name, details[name], { snapshot: m.snapshot }));
    if (m.global_state_details) rows.push(indexRow('_global_state', m.global_state_details, { global: true, snapshot: m.snapshot }));
    parts.push(
      el('h3', {}, 'Indices'),
      el(
        'div',
        { class: 'table-wrap' },
        labelCells(el(
          'table',
          { class: 'data cards', dataset: { testid: 'detail-indices' } },
          el('caption', { class: 'visually-hidden' }, `Indices of ${m.snapshot}`),
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ...['Index', 'Files', 'Folders', 'Logical', 'New (logical)', 'Reused', 'New (stored)', 'Files read', 'New share'].map((h, i) =>
                el('th', { scope: 'col', class: i > 0 && i < 8 ? 'num' : '' }, h),
              ),
            ),
          ),
          el('tbody', {}, ...rows),
        )),
      ),
    );
    const failures = m.failures || [];
    if (failures.length || m.state === 'PARTIAL') {
      parts.push(
        el('h3', {}, `Failures (${failures.length})`),
        failures.length
          ? el(
              'table',
              { class: 'data failures', dataset: { testid: 'detail-failures' } },
              el('thead', {}, el('tr', {}, ...['Index', 'Path', 'Reason'].map((h) => el('th', { scope: 'col' }, h)))),
              el(
                'tbody',
                {},
                ...failures.map((f) =>
                  el('tr', { dataset: { testid: 'failure-row' } }, el('td', {}, f.index ?? ''), el('td', { class: 'path' }, f.path ?? ''), el('td', {}, f.reason ?? '')),
                ),
              ),
            )
          : el('p', {}, 'The snapshot is PARTIAL but lists no failures.'),
      );
    }
    const meta = m.metadata && Object.keys(m.metadata).length ? m.metadata : null;
    parts.push(
      el('h3', {}, 'Metadata'),
      meta ? el('pre', { class: 'json', dataset: { testid: 'detail-metadata' } }, JSON.stringify(meta, null, 2)) : el('p', { class: 'muted' }, 'No metadata.'),
    );
    box.replaceChildren(...parts);
    box.dataset.snapshot = m.snapshot;
  }

  async function load(name) {
    const mine = ++loading;
    shown = name;
    box.setAttribute('aria-busy', 'true');
    await app.busy(`Reading ${name}…`, async () => {
      const m = await app.call('snapshot', name);
      if (mine !== loading) return;
      render(m);
      app.status('');
    }, `Could not read ${name}`);
    if (mine === loading) box.removeAttribute('aria-busy');
  }

  select.addEventListener('change', () => load(select.value));

  return {
    /** Forgets what is shown (answers still on their way are dropped); `keep` keeps the chosen snapshot if it still exists. */
    reset({ keep = false } = {}) {
      loading++;
      shown = null;
      box.replaceChildren();
      box.removeAttribute('aria-busy');
      delete box.dataset.snapshot;
      fillSelect(select, [...app.names].reverse(), { keep });
    },
    async show(options = {}) {
      const name = options.snapshot || select.value || app.names[app.names.length - 1];
      if (!name) {
        box.replaceChildren(el('p', { class: 'muted' }, 'This repository has no snapshots yet.'));
        return;
      }
      select.value = name;
      if (name !== shown) await load(name);
    },
  };
}
