// The snapshot table: one page at a time from Inspector.snapshots (sorted,
// filtered and paged in the worker with Elasticsearch's `after` cursor), so
// a thousand snapshots never mean a thousand rows.

import { bytes, count, duration, time, el, labelCells } from './format.js';

const COLUMNS = [
  { field: 'snapshot', label: 'Name', sort: 'name' },
  { field: 'state', label: 'State' },
  { field: 'start', label: 'Start time', sort: 'start_time' },
  { field: 'duration', label: 'Duration', sort: 'duration', num: true },
  { field: 'indices', label: 'Indices', sort: 'index_count', num: true },
  { field: 'size', label: 'Logical size', sort: 'size', num: true },
  { field: 'new', label: 'New (stored)', num: true },
];

export function createTable(app) {
  const $ = (id) => document.getElementById(id);
  const head = $('snapshot-head');
  const body = $('snapshot-body');
  const filterInput = $('filter-input');
  const pageSize = $('page-size');
  const prev = $('page-prev');
  const next = $('page-next');
  const info = $('page-info');
  const total = $('snapshot-total');

  const state = {
    sort: 'start_time',
    order: 'desc',
    // cursors[i] is the `after` that gives page i.
    cursors: [undefined],
    page: 0,
    nextCursor: null,
    loaded: false,
  };
  let loading = 0;

  /** The header row, built once: re-sorting updates it in place, so the focused sort button keeps focus. */
  function buildHead() {
    head.replaceChildren(
      ...COLUMNS.map((c) => {
        const th = el('th', { scope: 'col', class: c.num ? 'num' : '', dataset: { label: c.label } });
        if (!c.sort) {
          th.textContent = c.label;
          return th;
        }
        th.append(
          el(
            'button',
            {
              type: 'button',
              class: 'sort',
              dataset: { sort: c.sort, testid: `sort-${c.field}` },
              onclick: () => sortBy(c.sort),
            },
            c.label,
            el('span', { class: 'arrow', 'aria-hidden': 'true' }),
          ),
        );
        return th;
      }),
    );
  }

  /** Shows the sort in effect (aria-sort and arrows). */
  function renderHead() {
    for (const button of head.querySelectorAll('button.sort')) {
      const active = state.sort === button.dataset.sort;
      button.closest('th').setAttribute('aria-sort', active ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
      button.querySelector('.arrow').textContent = active ? (state.order === 'asc' ? '▲' : '▼') : '↕';
    }
  }

  function sortBy(key) {
    if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else {
      state.sort = key;
      state.order = key === 'name' ? 'asc' : 'desc';
    }
    firstPage();
  }

  function cell(field, text, value, attrs = {}) {
    return el('td', { dataset: { field, value: String(value) }, ...attrs }, text);
  }

  function row(s) {
    const st = s.stats || {};
    const name = el(
      'button',
      {
        type: 'button',
        class: 'link',
        title: `Show ${s.snapshot} in detail`,
        onclick: () => app.show('detail', { snapshot: s.snapshot }),
      },
      s.snapshot,
    );
    const failures = s.failure_count ? ` (${s.failure_count} failure${s.failure_count === 1 ? '' : 's'})` : '';
    return el(
      'tr',
      { dataset: { testid: 'snapshot-row', snapshot: s.snapshot } },
      el('th', { scope: 'row', dataset: { field: 'snapshot', value: s.snapshot } }, name),
      cell('state', el('span', { class: `state state-${String(s.state).toLowerCase()}` }, s.state + failures), s.state),
      cell('start', time(s.start_time_in_millis), s.start_time_in_millis, { title: s.start_time }),
      cell('duration', duration(s.duration_in_millis), s.duration_in_millis, { class: 'num' }),
      cell('indices', count((s.indices || []).length), (s.indices || []).length, {
        class: 'num',
        title: (s.indices || []).join(', '),
      }),
      cell('size', bytes(st.size_in_bytes), st.size_in_bytes, {
        class: 'num',
        title: `${count(st.size_in_bytes)} bytes in ${count(st.files)} files`,
      }),
      cell('new', bytes(st.new_stored_bytes), st.new_stored_bytes, {
        class: 'num',
        dataset: { field: 'new', value: String(st.new_stored_bytes), newBytes: String(st.new_bytes) },
        title: `${count(st.new_bytes)} bytes of new data, ${count(st.new_stored_bytes)} bytes stored`,
      }),
    );
  }

  /** Loads page number `to` (its cursor is in state.cursors); state.page moves only once it has. */
  async function load(to) {
    const mine = ++loading;
    const size = Number(pageSize.value) || 50;
    const filter = filterInput.value.trim();
    // No paging while a page is on its way (a second click would reuse a stale cursor).
    const focused = [prev, next].find((b) => b === document.activeElement) || null;
    prev.disabled = true;
    next.disabled = true;
    try {
      const page = await app.call('snapshots', state.sort, state.order, size, state.cursors[to], filter || undefined);
      if (mine !== loading) return;
      state.page = to;
      render(page, size, filter);
    } finally {
      if (mine === loading) {
        prev.disabled = state.page === 0;
        next.disabled = !state.nextCursor;
        // Keep keyboard focus in the pager when its button was disabled under it.
        if (focused && (document.activeElement === document.body || document.activeElement === null)) {
          const other = focused === next ? prev : next;
          if (!focused.disabled) focused.focus();
          else if (!other.disabled) other.focus();
        }
      }
    }
  }

  function render(page, size, filter) {
    renderHead();
    const rows = page.snapshots || [];
    body.replaceChildren(...rows.map(row));
    labelCells(body.closest('table'));
    if (rows.length === 0) {
      body.append(
        el('tr', {}, el('td', { colspan: COLUMNS.length, class: 'empty' }, filter ? `No snapshot matches “${filter}”.` : 'This repository has no snapshots yet.')),
      );
    }
    const first = state.page * size;
    state.nextCursor = page.remaining > 0 ? page.next : null;
    total.textContent = `${count(page.total)} snapshot${page.total === 1 ? '' : 's'}${filter ? ' match' : ''}`;
    total.dataset.value = String(page.total);
    info.textContent = rows.length ? `${count(first + 1)}–${count(first + rows.length)} of ${count(page.total)}` : '';
    state.loaded = true;
  }

  function reload(to = state.page) {
    return app.busy('Loading snapshots…', async () => {
      await load(to);
      app.status('');
    }, 'Could not list snapshots');
  }

  function firstPage() {
    state.cursors = [undefined];
    state.page = 0;
    state.nextCursor = null;
    return reload(0);
  }

  next.addEventListener('click', () => {
    if (next.disabled || !state.nextCursor) return;
    state.cursors[state.page + 1] = state.nextCursor;
    reload(state.page + 1);
  });
  prev.addEventListener('click', () => {
    if (prev.disabled || state.page === 0) return;
    reload(state.page - 1);
  });
  pageSize.addEventListener('change', firstPage);
  let timer = 0;
  filterInput.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(firstPage, 200);
  });
  filterInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      clearTimeout(timer);
      firstPage();
    }
  });

  buildHead();
  renderHead();

  return {
    /** Forgets the pages shown (answers still on their way are dropped); `keep` keeps the filter. */
    reset({ keep = false } = {}) {
      loading++;
      state.cursors = [undefined];
      state.page = 0;
      state.nextCursor = null;
      state.loaded = false;
      prev.disabled = true;
      next.disabled = true;
      if (!keep) {
        // Nothing of the repository shown before may linger under the next one.
        filterInput.value = '';
        body.replaceChildren();
        total.textContent = '';
        delete total.dataset.value;
        info.textContent = '';
      }
    },
    /** Loads the first page when needed; failures show in the error area. */
    async show() {
      if (!state.loaded) await reload(0);
    },
  };
}
