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

const rpc = new WorkerRpc(new URL('../worker.js', import.meta.url));

const statusEl = $('status');
const errorEl = $('error');

/** What the views share: the RPC, messages, the open repository's snapshots. */
const app = {
  location: null,
  /** Chart points for every snapshot, oldest first (from Inspector.chart). */
  points: [],
  /** Snapshot names, oldest first. */
  names: [],
  request: (op, ...args) => rpc.request(op, ...args),
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
    await selectTab(tab, options);
    const panel = document.getElementById(`panel-${tab}`);
    if (!panel.contains(document.activeElement)) panel.focus({ preventScroll: false });
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

function selectTab(name, options, focus = false) {
  current = name;
  for (const t of tabs) {
    const on = t.id === `tab-${name}`;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
    if (on && focus) t.focus();
  }
  if (app.location) return views[name].show(options);
  return undefined;
}

for (const t of tabs) {
  t.addEventListener('click', () => selectTab(t.id.slice(4)));
  t.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(t);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    selectTab(tabs[(to + tabs.length) % tabs.length].id.slice(4), undefined, true);
  });
}

// ---- Opening ----

let opening = 0;

async function openRepository(source, label) {
  const mine = ++opening;
  document.body.dataset.ready = '0';
  app.clearError();
  app.status(`Opening ${label}…`);
  document.body.classList.add('opening');
  try {
    const info = await rpc.request('open', source);
    if (mine !== opening) return false;
    app.location = info.location;
    app.points = await app.call('chart');
    app.names = app.points.map((p) => p.snapshot);
    $('where').textContent = info.location;
    $('where').title = `Repository generation ${info.config && info.config.generation}`;
    document.title = `${info.location} · snapkeep inspector`;
    document.body.classList.add('has-repo');
    for (const v of Object.values(views)) v.reset();
    await selectTab('snapshots');
    if (mine !== opening) return false;
    const n = app.names.length;
    app.status(`Opened ${info.location}: ${n} snapshot${n === 1 ? '' : 's'}.`);
    document.body.dataset.ready = '1';
    return true;
  } catch (e) {
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
  const src = { kind: 'url', url, token: token || '', page: location.href };
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
    // The address opens this repository again (the token stays out of it).
    history.replaceState(null, '', `${location.pathname}?repo=${addressParam(url)}`);
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
    app.fail(new Error('the chosen folder is empty: it is not a snapkeep repository'));
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

// ---- Start: ?repo=URL&token=T opens straight away ----

const params = new URLSearchParams(location.search);
const repo = params.get('repo');
if (repo) {
  const token = params.get('token') || '';
  $('repo-url').value = repo;
  $('repo-token').value = token;
  // Keep the token out of the address bar and the history.
  if (token) history.replaceState(null, '', `${location.pathname}?repo=${addressParam(repo)}`);
  openUrl(repo, token);
} else {
  app.status('Open an edge repository by its address, or choose a local repository folder.');
}
