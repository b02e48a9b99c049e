// The inspector's Web Worker: loads the snapkeep core (wasm), holds the open
// repository and its storage backend, and answers the page's RPC messages
// {id, op, args} with {id, ok, value} or {id, ok: false, error}; a long
// operation may post {id, part} messages before its answer.
//
// Ops: open(source) then commit(token) or discard(token) (the page shows a
// repository only once it is fully open, and the worker switches to it
// only when the page does), refresh(), call(method, ...args) (any
// Inspector method, raw result), and helpers that do the heavy work here so
// the page stays responsive: treeView, diffView, download.

import init, { Inspector, Sha256 } from './pkg/snapkeep.js';
import { HttpBackend, FilesBackend, HandleBackend, storageError } from './js/backends.js';

let ready = null;
/** The repository the page shows. */
let inspector = null;
/** A repository opened but not yet shown: {token, inspector}. */
let staged = null;
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

/** Frees a wasm object unless a call in flight still borrows it (then the garbage collector will). */
function release(insp) {
  if (!insp) return;
  try {
    insp.free();
  } catch {
    /* in use */
  }
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

// ---- "You picked the wrong folder" ----

const HEX2 = /^[0-9a-f]{2}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const MANIFEST = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$/;

/** Which part of a repository a folder's name and top level look like, if any. */
function partOfRepository(folder, top) {
  const files = top.filter((e) => !e.dir).map((e) => e.name);
  const dirs = top.filter((e) => e.dir).map((e) => e.name);
  if (folder === 'index') return 'the index/ folder';
  if (folder === 'packs' || (dirs.length > 0 && files.length === 0 && dirs.every((d) => HEX2.test(d)))) return 'the packs/ folder';
  if (folder === 'snapshots' || (files.length > 0 && files.every((f) => MANIFEST.test(f)))) return 'the snapshots/ folder';
  if (files.length > 0 && files.every((f) => HEX64.test(f))) {
    return HEX2.test(folder) ? `the pack folder packs/${folder}/` : 'the index/ folder';
  }
  return null;
}

/**
 * Why a picked folder is not the repository, when that is plain from its
 * top level ({name, dir}[]) and its subfolders holding a config (names):
 * the folder holding the repository, or a folder inside it. Null when the
 * folder has a config object or nothing more useful can be said (the core
 * then says what is missing).
 */
function wrongFolder(folder, top, innerConfig) {
  if (top.length === 0) return `the folder ${folder} is empty: there is no snapkeep repository in it`;
  if (top.some((e) => !e.dir && e.name === 'config')) return null;
  if (innerConfig.length > 0) {
    const sub = innerConfig[0];
    return `no snapkeep repository at ${folder}, but its subfolder ${sub} may hold one: choose ${sub}`;
  }
  const part = partOfRepository(folder, top);
  if (part) {
    return `no snapkeep repository at ${folder}: it looks like ${part} inside one; choose the repository folder itself (the one holding config, index/ and packs/)`;
  }
  return null;
}

function filesHint(folder, entries) {
  const top = new Map();
  const inner = [];
  for (const { path } of entries) {
    const cut = path.indexOf('/');
    const name = cut < 0 ? path : path.slice(0, cut);
    if (!name || name.startsWith('.tmp-')) continue;
    if (!top.has(name)) top.set(name, { name, dir: cut >= 0 });
    else if (cut >= 0) top.get(name).dir = true;
    if (cut >= 0 && path.slice(cut + 1) === 'config') inner.push(name);
  }
  return wrongFolder(folder, [...top.values()], inner.sort());
}

async function handleHint(handle) {
  try {
    await handle.getFileHandle('config');
    return null;
  } catch {
    /* no config: look closer */
  }
  try {
    const top = [];
    const dirs = [];
    for await (const [name, h] of handle.entries()) {
      if (name.startsWith('.tmp-')) continue;
      top.push({ name, dir: h.kind === 'directory' });
      if (h.kind === 'directory') dirs.push(h);
      if (top.length >= 10000) break; // enough to judge
    }
    const inner = [];
    for (const d of dirs.slice(0, 50)) {
      try {
        await d.getFileHandle('config');
        inner.push(d.name);
      } catch {
        /* not this one */
      }
    }
    return wrongFolder(handle.name, top, inner.sort());
  } catch {
    return null; // unreadable: the core's own error says more
  }
}

async function backendFor(source) {
  switch (source.kind) {
    case 'url':
      return new HttpBackend(source.url, source.token, source.page);
    case 'files': {
      const { name, entries } = relativeEntries(source.files, source.paths || []);
      const folder = source.name || name;
      const hint = filesHint(folder, entries);
      if (hint) throw storageError('NotFound', hint);
      return new FilesBackend(folder, entries);
    }
    case 'handle': {
      const hint = await handleHint(source.handle);
      if (hint) throw storageError('NotFound', hint);
      return new HandleBackend(source.handle);
    }
    default:
      throw new Error(`unknown repository source ${source.kind}`);
  }
}

// ---- Opening: open, then commit (or discard) ----

/**
 * Opens a repository and reads what the page needs to show it, without
 * switching to it: the page commits once it has everything, so a failure
 * at any step leaves the repository shown before in place in both.
 */
async function open(source, password) {
  const mine = ++generation;
  await loadWasm();
  const backend = await backendFor(source);
  // An encrypted repository's password is used here only, to open a key
  // slot in the wasm core; it is never sent anywhere.
  const opened = await Inspector.open(backend, password || undefined);
  if (mine !== generation) {
    release(opened);
    throw new Error('another repository was opened meanwhile');
  }
  let info;
  try {
    info = { token: mine, location: opened.location, config: opened.config(), points: opened.chart() };
  } catch (e) {
    release(opened);
    throw e;
  }
  if (staged) release(staged.inspector);
  staged = { token: mine, inspector: opened };
  return info;
}

/** Switches to the repository staged by open `token`. */
function commit(token) {
  if (!staged || staged.token !== token) throw new Error('that repository is no longer waiting to be shown; open it again');
  const old = inspector;
  inspector = staged.inspector;
  staged = null;
  release(old);
}

/** Drops the repository staged by open `token`, if it still is. */
function discard(token) {
  if (staged && staged.token === token) {
    release(staged.inspector);
    staged = null;
  }
}

/** Reads the newest root again; the chart points as they are now. */
async function refresh() {
  const insp = need();
  await insp.refresh();
  return { location: insp.location, config: insp.config(), points: insp.chart() };
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

/** Bytes per ranged read of a download (and per part posted to the page). */
const WINDOW = 8 << 20;

/**
 * A file's verified bytes, read in windows so the wasm memory never holds
 * more than one: each is hashed here and posted to the page as a part
 * {offset, size, bytes} (its buffer transferred). The answer is the
 * file's SHA-256 and size.
 */
async function download(snapshot, index, path) {
  const insp = need();
  const size = await insp.file_size(snapshot, index, path);
  const hasher = new Sha256();
  try {
    for (let at = 0; at < size; ) {
      if (insp !== inspector) throw new Error('another repository was opened: the download stopped');
      const end = Math.min(size, at + WINDOW);
      let bytes = await insp.read_file_range(snapshot, index, path, at, end);
      if (bytes.length !== end - at) {
        throw new Error(`reading bytes ${at}..${end} of ${index}/${path} gave ${bytes.length} bytes`);
      }
      hasher.update(bytes);
      if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
      this.part({ offset: at, size, bytes }, [bytes.buffer]);
      at = end;
    }
    return { value: { sha256: hasher.finish(), size } };
  } finally {
    hasher.free();
  }
}

const OPS = {
  open: async (source, password) => ({ value: await open(source, password) }),
  commit: async (token) => ({ value: commit(token) }),
  discard: async (token) => ({ value: discard(token) }),
  refresh: async () => ({ value: await refresh() }),
  call: async (...args) => ({ value: await call(...args) }),
  treeView,
  diffView,
  download,
};

function describe(e) {
  if (e instanceof Error || (e && typeof e.message === 'string')) {
    let message = String(e.message).split('\n')[0];
    if (e.name === 'RuntimeError') {
      // A trap leaves the wasm instance unusable: the page starts a new worker.
      message = `the inspector crashed (${message})`;
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
    // `this.part` posts one part of a long answer (see download).
    const context = { part: (part, transfer) => self.postMessage({ id, part }, transfer || []) };
    const { value, transfer } = await fn.apply(context, args || []);
    self.postMessage({ id, ok: true, value }, transfer || []);
  } catch (e) {
    self.postMessage({ id, ok: false, error: describe(e) });
  }
};

// Start loading the module before the first request arrives.
loadWasm().catch(() => {});
