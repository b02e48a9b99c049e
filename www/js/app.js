// The inspector page: opens a repository (edge URL or local folder) in the
// Web Worker and wires the views. Everything the core computes runs in
// worker.js; this file only talks to it through the RPC in rpc.js.

import { WorkerRpc } from './rpc.js';
import { collectDrop, pickDirectory, canPickDirectory } from './folder.js';
import { createTable } from './table.js';
import { createChart } from './chart.js';
import { createDetail } from './detail.js';
import { createTree } from './tree.js';
import { createDiff } from './diff.js';
import { createPlan } from './plan.js';

const $ = (id) => document.getElementById(id);

const rpc = new WorkerRpc(new URL('../worker.js', import.meta.url), { onRestart: (reason) => restarted(reason) });

const statusEl = $('status');
const errorEl = $('error');

/** What the views share: the RPC, messages, the open repository's snapshots. */
const app = {
  location: null,
  /** REPO in the CLI commands the page shows: the edge URL, or null for a folder. */
  cliRepo: null,
  /** Chart points for every snapshot, oldest first (from Inspector.chart). */
  points: [],
  /** Snapshot names, oldest first. */
  names: [],
  request: (op, ...args) => rpc.request(op, ...args),
  /** Like request, with every part the worker posts before its answer handed to onPart. */
  stream: (op, onPart, ...args) => rpc.stream(op, onPart, ...args),
  call: (method, ...args) => rpc.request('call', method, ...args),
  status(message) {
    statusEl.textContent = message;
  },
  clearError() {
    errorEl.textContent = '';
  },
  /** Shows one line saying what failed; `context` says what was being done. */
  fail(err, context) {
    const message = oneLine(err);
    errorEl.textContent = context ? `${context}: ${message}` : message;
    statusEl.textContent = '';
  },
  /** Runs `work` with a status line; failures go to the error area. */
  async busy(message, work, context) {
    this.clearError();
    this.status(message);
    try {
      const out = await work();
      return out;
    } catch (e) {
      this.fail(e, context);
      return undefined;
    }
  },
  /** Switches view from a link inside a view; focus follows to the new panel. */
  async show(tab, options) {
    try {
      await selectTab(tab, options);
    } catch (e) {
      this.fail(e);
      return;
    }
    const panel = document.getElementById(`panel-${tab}`);
    if (!panel.hidden && !panel.contains(document.activeElement)) panel.focus({ preventScroll: false });
  },
};

function oneLine(err) {
  const m = err && err.message ? err.message : String(err);
  return m.split('\n')[0].trim() || 'failed';
}

// Tests and curious users: window.snapkeepInspector.call('stats').
window.snapkeepInspector = {
  call: (method, ...args) => rpc.request('call', method, ...args),
  request: (op, ...args) => rpc.request(op, ...args),
};

const views = {
  snapshots: createTable(app),
  chart: createChart(app),
  detail: createDetail(app),
  tree: createTree(app),
  diff: createDiff(app),
  plan: createPlan(app),
};

// ---- Tabs (WAI-ARIA tabs with automatic activation) ----

const tabs = [...document.querySelectorAll('[role=tab]')];
let current = 'snapshots';

async function selectTab(name, options, focus = false) {
  current = name;
  for (const t of tabs) {
    const on = t.id === `tab-${name}`;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
    if (on && focus) t.focus();
  }
  if (app.location) await views[name].show(options);
}

for (const t of tabs) {
  t.addEventListener('click', () => selectTab(t.id.slice(4)).catch((e) => app.fail(e)));
  t.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(t);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    selectTab(tabs[(to + tabs.length) % tabs.length].id.slice(4), undefined, true).catch((err) => app.fail(err));
  });
}

// ---- The repository shown ----

const skip = $('skip');
/** Bumped whenever another repository is shown (or none), so late answers about the old one are dropped. */
let shownRepo = 0;

/** Shows the repository `info` describes (from the worker's open or refresh). */
function applyInfo(info) {
  app.location = info.location;
  app.points = info.points || [];
  app.names = app.points.map((p) => p.snapshot);
  $('where').textContent = info.location;
  $('where').title = `Repository generation ${info.config && info.config.generation}`;
  document.title = `${info.location} · snapkeep inspector`;
  document.body.classList.add('has-repo');
  // The skip link leads to the views once there are some.
  skip.href = '#views';
  skip.textContent = 'Skip to the views';
}

/** Back to "no repository open" (the worker holds none either). */
function closeRepository() {
  const focusLost = $('views').contains(document.activeElement);
  shownRepo++;
  app.location = null;
  app.cliRepo = null;
  app.points = [];
  app.names = [];
  for (const v of Object.values(views)) v.reset();
  document.body.classList.remove('has-repo');
  document.body.dataset.ready = '0';
  $('where').textContent = 'No repository open';
  $('where').title = '';
  document.title = 'snapkeep inspector';
  skip.href = '#open-panel';
  skip.textContent = 'Skip to opening a repository';
  if (focusLost) $('open-panel').focus();
}

/** The worker died and a fresh one replaced it: whatever was open is gone. */
function restarted(reason) {
  // An open in flight went down with the worker; its own error is shown.
  opening++;
  document.body.classList.remove('opening');
  if (!app.location) return;
  closeRepository();
  app.fail(new Error(`The inspector stopped (${reason}) and was restarted: open the repository again`));
}

// ---- Opening ----

let opening = 0;

// ---- Encrypted repositories: the password form ----

/** The source waiting for its password: {source, label}, or null. */
let locked = null;
const unlockForm = $('unlock-form');
const passwordInput = $('repo-password');

/** Asks for the password of `source` (after `why`: Encrypted or WrongPassword). */
function askPassword(source, label, code) {
  locked = { source, label };
  $('unlock-why').textContent =
    code === 'WrongPassword'
      ? `That password does not open ${label}: try again.`
      : `${label} is encrypted: enter its password to open it in this page.`;
  unlockForm.hidden = false;
  passwordInput.value = '';
  passwordInput.focus();
}

function hidePassword() {
  locked = null;
  unlockForm.hidden = true;
  passwordInput.value = '';
}

unlockForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!locked) return;
  const { source, label } = locked;
  const password = passwordInput.value;
  passwordInput.value = '';
  if (!password) return;
  await openRepository(source, label, password);
});

async function openRepository(source, label, password) {
  const mine = ++opening;
  document.body.dataset.ready = '0';
  app.clearError();
  // A key derivation of 64 MiB takes a second or two in wasm.
  app.status(password ? `Unlocking ${label}…` : `Opening ${label}…`);
  document.body.classList.add('opening');
  if (!password) hidePassword();
  try {
    // The worker opens the repository and reads its snapshots without
    // switching to it; it switches on commit, when the page does. Until
    // then a failure leaves the repository shown before in place in both.
    const info = await rpc.request('open', source, password);
    if (mine === opening) hidePassword();
    if (mine !== opening) {
      rpc.request('discard', info.token).catch(() => {});
      return false;
    }
    await rpc.request('commit', info.token);
    // Committed: the page shows it too, even if another open has started
    // meanwhile (that one replaces it in turn, or fails and leaves it).
    shownRepo++;
    applyInfo(info);
    // REPO for CLI commands: the edge URL, absolute; a picked folder's
    // path is unknown to the page.
    app.cliRepo = source.kind === 'url' ? new URL(source.url, source.page).href.split(/[?#]/)[0] : null;
    for (const v of Object.values(views)) v.reset();
    await selectTab('snapshots');
    if (mine !== opening) return false;
    const n = app.names.length;
    app.status(`Opened ${info.location}: ${n} snapshot${n === 1 ? '' : 's'}.`);
    document.body.dataset.ready = '1';
    return true;
  } catch (e) {
    if (mine === opening && (e.code === 'Encrypted' || e.code === 'WrongPassword')) {
      askPassword(source, label, e.code);
      if (e.code === 'WrongPassword') app.fail(e, 'Could not unlock the repository');
      else app.status('');
      if (app.location) document.body.dataset.ready = '1';
      return false;
    }
    if (mine === opening) {
      app.fail(e, 'Could not open the repository');
      // The repository open before, if any, is still open and shown.
      if (app.location) {
        app.status(`Still showing ${app.location}.`);
        document.body.dataset.ready = '1';
      }
    }
    return false;
  } finally {
    if (mine === opening) document.body.classList.remove('opening');
  }
}

function openUrl(url, token) {
  // Relative addresses resolve against the page (without its query or fragment).
  const src = { kind: 'url', url, token: token || '', page: location.href.split(/[?#]/)[0] };
  return openRepository(src, url);
}

$('open-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const url = $('repo-url').value.trim();
  if (!url) {
    app.fail(new Error('enter the address of an edge repository, like /api/repos/NAME'));
    return;
  }
  const ok = await openUrl(url, $('repo-token').value.trim());
  if (ok) {
    // The address opens this repository again (the token stays out of it,
    // as does any query or fragment typed with the URL: they are not used).
    history.replaceState(null, '', `${location.pathname}?repo=${addressParam(url.split(/[?#]/)[0])}`);
  }
});

/** A URL as a query value, keeping its slashes and colons readable. */
function addressParam(url) {
  return encodeURIComponent(url).replace(/%2F/gi, '/').replace(/%3A/gi, ':');
}

function openFolderSource(source, label) {
  history.replaceState(null, '', location.pathname);
  return openRepository(source, label);
}

const folderInput = $('folder-input');
folderInput.addEventListener('change', () => {
  const files = [...folderInput.files];
  const paths = files.map((f) => f.webkitRelativePath || f.name);
  folderInput.value = '';
  if (files.length === 0) {
    app.fail(new Error('the chosen folder is empty: there is no snapkeep repository in it'));
    return;
  }
  const name = (paths[0] || '').split('/')[0] || 'folder';
  openFolderSource({ kind: 'files', files, paths }, `folder ${name}`);
});

$('choose-folder').addEventListener('click', async () => {
  if (!canPickDirectory()) {
    folderInput.click();
    return;
  }
  try {
    const handle = await pickDirectory();
    if (handle) openFolderSource({ kind: 'handle', handle }, `folder ${handle.name}`);
  } catch (e) {
    // The picker can be refused (e.g. system folders): fall back to the input.
    if (e && e.name === 'AbortError') return;
    folderInput.click();
  }
});

const zone = $('drop-zone');
for (const type of ['dragenter', 'dragover']) {
  zone.addEventListener(type, (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  });
}
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
// A drop that misses the zone should not navigate away from the page.
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => e.preventDefault());
zone.addEventListener('drop', async (e) => {
  e.preventDefault();
  zone.classList.remove('over');
  const pending = collectDrop(e.dataTransfer);
  app.clearError();
  app.status('Reading the dropped folder…');
  try {
    const source = await pending;
    const label = source.kind === 'handle' ? `folder ${source.handle.name}` : `folder ${source.name}`;
    await openFolderSource(source, label);
  } catch (err) {
    app.fail(err, 'Could not open the dropped item');
  }
});

// ---- Refresh: snapshots taken since opening ----

let refreshing = false;

$('refresh').addEventListener('click', async () => {
  if (!app.location || refreshing) return;
  refreshing = true;
  const mine = shownRepo;
  const before = app.names.length;
  try {
    const info = await app.busy('Reading the newest snapshots…', () => rpc.request('refresh'), 'Could not refresh');
    // Another repository is shown meanwhile: this answer is about the old one.
    if (!info || mine !== shownRepo) return;
    applyInfo(info);
    for (const v of Object.values(views)) v.reset({ keep: true });
    await selectTab(current);
    const n = app.names.length;
    const added = n - before;
    app.status(`Refreshed ${info.location}: ${n} snapshot${n === 1 ? '' : 's'}${added > 0 ? `, ${added} new` : ''}.`);
  } catch (e) {
    app.fail(e, 'Could not refresh');
  } finally {
    refreshing = false;
  }
});

// ---- Start: ?repo=URL#token=T opens straight away ----

const params = new URLSearchParams(location.search);
// The token belongs in the fragment (#token=T), which no server sees; the
// query (?token=T) still works for old links. Either way it leaves the
// address bar and the history at once, and is never logged.
const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
const given = params.get('repo');
// A query or fragment inside the repository address is not used (and could hide a token).
const repo = given ? given.split(/[?#]/)[0] : given;
const token = fragment.get('token') || params.get('token') || '';
if (params.has('token') || fragment.has('token') || repo !== given) {
  history.replaceState(null, '', repo ? `${location.pathname}?repo=${addressParam(repo)}` : location.pathname);
}
if (token) $('repo-token').value = token;
if (repo) {
  $('repo-url').value = repo;
  openUrl(repo, token);
} else {
  app.status('Open an edge repository by its address, or choose a local repository folder.');
}
