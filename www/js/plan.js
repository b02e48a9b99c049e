// Restore plan preview: what restoring a selection of a snapshot's indices
// (renamed, with or without global state) into an empty target would do.

import { bytes, count, el, fillSelect } from './format.js';

export function createPlan(app) {
  const $ = (id) => document.getElementById(id);
  const form = $('plan-form');
  const snapshot = $('plan-snapshot');
  const indices = $('plan-indices');
  const pattern = $('plan-rename-pattern');
  const replacement = $('plan-rename-replacement');
  const global = $('plan-global');
  const out = $('plan-summary');
  let loading = 0;
  /** After a refresh: plan the same restore again when shown. */
  let rerun = false;

  function fact(field, label, value, shown) {
    return [
      el('dt', {}, label),
      el('dd', { dataset: { field, value: String(value ?? '') } }, shown ?? count(value)),
    ];
  }

  function conflictText(c) {
    if (typeof c === 'string') return c;
    const [kind, body] = Object.entries(c)[0] || ['conflict', {}];
    if (kind === 'TargetNotEmpty' || kind === 'target_not_empty') return `index ${body.index}: ${body.path} exists and is not empty`;
    if (kind === 'GlobalStateExists' || kind === 'global_state_exists') return `global state entry ${body.path} exists`;
    return `${kind}: ${JSON.stringify(body)}`;
  }

  /** A word as a POSIX shell reads it back. */
  function shellWord(w) {
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
  }

  /** The `snapkeep restore` that does what the plan shows (TARGET to fill in). */
  function cliCommand(plan, asked) {
    const args = ['snapkeep', 'restore', app.cliRepo || 'REPO', plan.snapshot, '--target', 'TARGET'];
    if (asked.indices && asked.indices !== '*') args.push('--indices', asked.indices);
    if (asked.pattern) args.push('--rename-pattern', asked.pattern, '--rename-replacement', asked.replacement);
    if (plan.global_state) args.push('--include-global-state');
    return args.map((a, i) => (i < 2 || a === 'REPO' || a === 'TARGET' ? a : shellWord(a))).join(' ');
  }

  function commandBlock(command) {
    const code = el('code', { dataset: { testid: 'plan-command' } }, command);
    const button = el('button', { type: 'button', dataset: { testid: 'plan-copy' } }, 'Copy as CLI command');
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(command);
        app.status('Copied the restore command; replace TARGET (and REPO for a folder) before running it.');
      } catch {
        // No clipboard permission: select the text for a manual copy.
        const range = document.createRange();
        range.selectNodeContents(code);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        app.status('Select and copy the command shown.');
      }
    });
    return el('div', { class: 'plan-command' }, el('h3', {}, 'As a CLI command'), el('pre', {}, code), button);
  }

  function render(plan, asked) {
    const s = plan.summary || {};
    const conflicts = plan.conflicts || [];
    const nConflicts = s.conflicts ?? conflicts.length;
    const mapping = plan.indices || [];
    out.replaceChildren(
      el('h2', {}, `Restoring from ${plan.snapshot}`, el('span', { class: 'muted' }, ' (dry run, into an empty target)')),
      el(
        'dl',
        { class: 'facts big' },
        ...fact('files', 'Files', s.files),
        ...fact('dirs', 'Folders', s.dirs),
        ...fact('symlinks', 'Symlinks', s.symlinks),
        ...fact('bytes', 'Bytes restored', s.bytes, `${bytes(s.bytes)} (${count(s.bytes)})`),
        ...fact('bytes_to_fetch', 'Bytes to fetch', s.bytes_to_fetch, `${bytes(s.bytes_to_fetch)} (${count(s.bytes_to_fetch)})`),
        ...fact('requests', 'Requests', s.requests),
        ...fact('blobs', 'Blobs', s.blobs),
        ...fact('conflicts', 'Conflicts', nConflicts),
        ...fact('global_state', 'Global state', plan.global_state ? 1 : 0, plan.global_state ? 'restored' : 'not restored'),
      ),
      el('h3', {}, `Indices (${mapping.length})`),
      mapping.length
        ? el(
            'table',
            { class: 'data compact', dataset: { testid: 'plan-indices-table' } },
            el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'From'), el('th', { scope: 'col' }, 'Restored as'))),
            el('tbody', {}, ...mapping.map((m) => el('tr', { dataset: { from: m.from, to: m.to } }, el('td', {}, m.from), el('td', {}, m.to)))),
          )
        : el('p', { class: 'muted' }, 'The selection matches no index.'),
      el('h3', {}, `Conflicts (${conflicts.length})`),
      conflicts.length
        ? el('ul', { class: 'conflicts' }, ...conflicts.map((c) => el('li', {}, conflictText(c))))
        : el('p', { class: 'muted' }, 'None: an empty target has nothing in the way.'),
      commandBlock(cliCommand(plan, asked)),
    );
    out.dataset.snapshot = plan.snapshot;
  }

  async function run() {
    if (!snapshot.value) return;
    const mine = ++loading;
    const p = pattern.value;
    const r = replacement.value;
    const name = snapshot.value;
    out.setAttribute('aria-busy', 'true');
    await app.busy(`Planning the restore of ${name}…`, async () => {
      const plan = await app.call(
        'restore_plan',
        name,
        indices.value.trim() || '*',
        p ? p : undefined,
        p ? r : undefined,
        global.checked,
      );
      if (mine !== loading) return;
      render(plan, { indices: indices.value.trim(), pattern: p, replacement: r });
      const s = plan.summary;
      const of = plan.snapshot ?? name;
      app.status(s ? `Restore plan for ${of}: ${count(s.files)} files, ${bytes(s.bytes_to_fetch)} to fetch.` : `Restore plan for ${of}.`);
    }, 'Could not plan the restore');
    if (mine === loading) out.removeAttribute('aria-busy');
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });

  return {
    /** Forgets the plan shown (answers still on their way are dropped); `keep` keeps the chosen snapshot if it still exists. */
    reset({ keep = false } = {}) {
      loading++;
      const had = keep && out.dataset.snapshot ? snapshot.value : null;
      out.replaceChildren();
      out.removeAttribute('aria-busy');
      delete out.dataset.snapshot;
      fillSelect(snapshot, [...app.names].reverse(), { keep });
      rerun = !!had && snapshot.value === had;
    },
    async show(options = {}) {
      if (options.snapshot) snapshot.value = options.snapshot;
      if (rerun) {
        rerun = false;
        await run();
      }
    },
  };
}
