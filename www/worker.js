// The inspector's Web Worker: loads the snapkeep core (wasm), holds the open
// repository and its storage backend, and answers the page's RPC messages
// {id, op, args} with {id, ok, value} or {id, ok: false, error}.
//
// Ops: open(source), call(method, ...args) (any Inspector method, raw
// result), and view helpers that do the heavy reshaping here so the page
// stays responsive: treeView, diffView, readFile.

import init, { Inspector } from './pkg/snapkeep.js';
import { HttpBackend, FilesBackend, HandleBackend, storageError } from './js/backends.js';
import { sha256Hex } from './js/sha256.js';

let ready = null;
let inspector = null;
/** Bumped on every open, so a slow open that lost the race is dropped. */
let generation = 0;

function loadWasm() {
  if (!ready) {
    ready = init().catch((e) => {
      ready = null;
      throw new Error(`the inspector's WebAssembly module could not be loaded (${e.message})`);
    });
  }
  return ready;
}

/** Strips the picked folder's own name from webkitRelativePath-like paths. */
function relativeEntries(files, paths) {
  const entries = [];
  let name = '';
  for (let i = 0; i < files.length; i++) {
    const p = (paths[i] || files[i].webkitRelativePath || files[i].name).replace(/\\/g, '/');
    const cut = p.indexOf('/');
    if (cut < 0) {
      entries.push({ path: p, file: files[i] });
    } else {
      if (!name) name = p.slice(0, cut);
      entries.push({ path: p.slice(cut + 1), file: files[i] });
    }
  }
  return { name: name || 'picked files', entries };
}

function backendFor(source) {
  switch (source.kind) {
    case 'url':
      return new HttpBackend(source.url, source.token, source.page);
    case 'files': {
      const { name, entries } = relativeEntries(source.files, source.paths || []);
      const folder = source.name || name;
      if (entries.length === 0) throw storageError('NotFound', `the folder ${folder} is empty: it is not a snapkeep repository`);
      if (!entries.some((e) => e.path === 'config')) {
        // A common slip: picking the folder that holds the repository.
        const inner = entries.find((e) => /^[^/]+\/config$/.test(e.path));
        if (inner) {
          const sub = inner.path.split('/')[0];
          throw storageError('NotFound', `folder ${folder} is not a snapkeep repository (no config object), but its subfolder ${sub} may be: choose ${sub}`);
        }
      }
      return new FilesBackend(folder, entries);
    }
    case 'handle':
      return new HandleBackend(source.handle);
    default:
      throw new Error(`unknown repository source ${source.kind}`);
  }
}

async function open(source) {
  await loadWasm();
  const mine = ++generation;
  const backend = backendFor(source);
  const opened = await Inspector.open(backend);
  if (mine !== generation) {
    try {
      opened.free();
    } catch {
      /* in use */
    }
    throw new Error('another repository was opened meanwhile');
  }
  const old = inspector;
  inspector = opened;
  if (old) {
    try {
      old.free();
    } catch {
      // Still borrowed by a call in flight: let the garbage collector have it.
    }
  }
  return { location: opened.location, config: opened.config() };
}

function need() {
  if (!inspector) throw new Error('no repository is open');
  return inspector;
}

async function call(method, ...args) {
  const insp = need();
  if (method === 'location') return insp.location;
  if (typeof insp[method] !== 'function' || method.startsWith('_') || method === 'free' || method === 'constructor') {
    throw new Error(`the inspector has no method ${method}`);
  }
  return await insp[method](...args);
}

const TYPES = { file: 0, dir: 1, symlink: 2 };
const CHANGES = { added: 0, removed: 1, modified: 2, metadata: 3 };

/** One folder level, as columns (cheap to post and to read on the page). */
async function treeView(snapshot, index, path) {
  const t = await need().tree(snapshot, index, path);
  const list = t.entries || [];
  const n = list.length;
  const names = new Array(n);
  const types = new Uint8Array(n);
  const sizes = new Float64Array(n);
  const mtimes = new Float64Array(n);
  const modes = new Uint32Array(n);
  const targets = {};
  for (let i = 0; i < n; i++) {
    const e = list[i];
    names[i] = e.name;
    types[i] = TYPES[e.type] ?? 3;
    sizes[i] = e.size ?? 0;
    // mtime is ISO 8601 (milliseconds); mode is octal text.
    mtimes[i] = typeof e.mtime === 'string' ? Date.parse(e.mtime) : Number(e.mtime_ns) / 1e6;
    modes[i] = typeof e.mode === 'string' ? parseInt(e.mode, 8) || 0 : e.mode || 0;
    if (e.target !== undefined && e.target !== null) targets[i] = e.target;
  }
  return {
    value: {
      snapshot,
      index,
      path: t.path ?? path,
      count: n,
      names: names.join('\0'),
      types,
      sizes,
      mtimes,
      modes,
      targets,
    },
    transfer: [types.buffer, sizes.buffer, mtimes.buffer, modes.buffer],
  };
}

/** A diff, as columns. */
async function diffView(from, to) {
  const d = await need().diff(from, to);
  const list = d.changes || [];
  const n = list.length;
  const paths = new Array(n);
  const changes = new Uint8Array(n);
  const types = new Uint8Array(n);
  const oldSizes = new Float64Array(n).fill(NaN);
  const newSizes = new Float64Array(n).fill(NaN);
  for (let i = 0; i < n; i++) {
    const c = list[i];
    paths[i] = c.path;
    changes[i] = CHANGES[c.change] ?? 3;
    types[i] = TYPES[c.type] ?? 3;
    if (c.old_size !== undefined && c.old_size !== null) oldSizes[i] = c.old_size;
    if (c.new_size !== undefined && c.new_size !== null) newSizes[i] = c.new_size;
  }
  return {
    value: {
      from,
      to,
      counts: { added: d.added, removed: d.removed, modified: d.modified, metadata: d.metadata },
      count: n,
      paths: paths.join('\0'),
      changes,
      types,
      oldSizes,
      newSizes,
    },
    transfer: [changes.buffer, types.buffer, oldSizes.buffer, newSizes.buffer],
  };
}

/** A file's verified bytes and their SHA-256. */
async function readFile(snapshot, index, path) {
  const bytes = await need().read_file(snapshot, index, path);
  const sha256 = await sha256Hex(bytes);
  return { value: { bytes, sha256, size: bytes.length }, transfer: [bytes.buffer] };
}

const OPS = {
  open: async (source) => ({ value: await open(source) }),
  call: async (...args) => ({ value: await call(...args) }),
  treeView,
  diffView,
  readFile,
};

function describe(e) {
  if (e instanceof Error || (e && typeof e.message === 'string')) {
    let message = String(e.message).split('\n')[0];
    if (e.name === 'RuntimeError') {
      // A trap leaves the wasm instance unusable: the page starts a new worker.
      message = `the inspector crashed (${message}); open the repository again`;
      return { message, name: e.name, code: e.code, fatal: true };
    }
    return { message, name: e.name, code: e.code };
  }
  return { message: String(e) };
}

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    const fn = OPS[op];
    if (!fn) throw new Error(`unknown operation ${op}`);
    const { value, transfer } = await fn(...(args || []));
    self.postMessage({ id, ok: true, value }, transfer || []);
  } catch (e) {
    self.postMessage({ id, ok: false, error: describe(e) });
  }
};

// Start loading the module before the first request arrives.
loadWasm().catch(() => {});
