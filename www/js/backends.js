// Storage backends for the wasm Inspector (see src/inspector/backend.rs):
// objects with get(key, start?, end?), list(prefix), head(key) and a
// `location` string. They live in the Web Worker. Failures reject with an
// Error whose `code` is NotFound, Unauthorized, Forbidden, RangeInvalid or
// Unavailable (anything else is reported as an I/O failure).

/** An Error carrying one of the port's codes. */
export function storageError(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

/** Past this, an `end` means "to the end of the object" (wasm caps at 2^53). */
const OPEN_END = 2 ** 53 - 1;

function escapeKey(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

/**
 * The object API of a snapkeep edge Worker: {base}/objects/KEY and
 * {base}/objects?prefix=&cursor=. `base` may be relative to `pageUrl`.
 */
export class HttpBackend {
  constructor(base, token, pageUrl) {
    let url;
    try {
      url = new URL(base, pageUrl);
    } catch {
      throw storageError('Unavailable', `"${base}" is not a valid repository address`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw storageError('Unavailable', `${base}: only http and https repository addresses can be opened`);
    }
    if (url.username || url.password) {
      throw storageError('Unavailable', 'put the token in the Token field, not in the repository address');
    }
    url.search = '';
    url.hash = '';
    this.base = url.href.replace(/\/+$/, '');
    this.token = token || '';
    this.location = this.base;
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  async send(url, init, key) {
    let resp;
    try {
      // redirect: 'error' so the Authorization header never follows a
      // redirect to another place.
      resp = await fetch(url, { ...init, cache: 'no-store', credentials: 'same-origin', redirect: 'error' });
    } catch (e) {
      throw storageError(
        'Unavailable',
        `unreachable (${e && e.message ? e.message : 'network error'}: is the address right, the server running, and, for another site, CORS allowed? Redirects are not followed)`,
      );
    }
    if (resp.ok) return resp;
    throw await this.failure(resp, key, init.method === 'HEAD');
  }

  /** Turns an error status into a port error with the server's one-line reason. */
  async failure(resp, key, isHead) {
    let reason = '';
    if (!isHead) {
      try {
        const body = await resp.json();
        reason = body && body.error && (body.error.reason || body.error.type) || '';
      } catch {
        /* not JSON */
      }
    }
    const s = resp.status;
    const why = reason ? `: ${reason}` : '';
    switch (s) {
      case 401:
        return storageError('Unauthorized', `a token is needed (401 Unauthorized${why}): enter it in the Token field`);
      case 403:
        return storageError('Forbidden', `the token was refused (403 Forbidden${why})`);
      case 404:
        return storageError('NotFound', `${key} not found${why}`);
      case 416:
        return storageError('RangeInvalid', `range outside ${key}${why}`);
      default:
        if (s >= 500 || s === 429 || s === 408) {
          return storageError('Unavailable', `${this.base} answered ${s} ${resp.statusText}${why}`);
        }
        return storageError('Io', `${this.base} answered ${s} ${resp.statusText} for ${key}${why}`);
    }
  }

  async get(key, start, end) {
    const url = `${this.base}/objects/${escapeKey(key)}`;
    const extra = {};
    if (start !== undefined && start !== null) {
      const hasEnd = end !== undefined && end !== null && end < OPEN_END;
      if (hasEnd && start >= end) {
        // Nothing to read: only the object's existence and size matter.
        const { size } = await this.head(key);
        if (start > size) throw storageError('RangeInvalid', `range ${start}..${end} outside ${key} (${size} bytes)`);
        return new Uint8Array(0);
      }
      extra.Range = hasEnd ? `bytes=${start}-${end - 1}` : `bytes=${start}-`;
    }
    let resp;
    try {
      resp = await this.send(url, { method: 'GET', headers: this.headers(extra) }, key);
    } catch (e) {
      // A range starting exactly at the end of the object is empty, not an
      // error (the port's rule); servers answer it 416.
      if (e.code === 'RangeInvalid' && extra.Range && start === (await this.head(key)).size) return new Uint8Array(0);
      throw e;
    }
    let buf;
    try {
      buf = new Uint8Array(await resp.arrayBuffer());
    } catch (e) {
      throw storageError('Unavailable', `unreachable: reading ${key} from ${this.base} failed (${e.message})`);
    }
    // A server that ignored Range sent the whole object: cut it here.
    if (extra.Range && resp.status === 200) {
      const stop = end !== undefined && end !== null && end < OPEN_END ? Math.min(end, buf.length) : buf.length;
      if (start > buf.length) throw storageError('RangeInvalid', `range outside ${key}`);
      buf = buf.subarray(start, stop);
    }
    return buf;
  }

  async head(key) {
    const url = `${this.base}/objects/${escapeKey(key)}`;
    const resp = await this.send(url, { method: 'HEAD', headers: this.headers() }, key);
    const size = resp.headers.get('X-Snapkeep-Size') ?? resp.headers.get('Content-Length');
    if (size === null) {
      throw storageError('Io', `${this.base} gave no size for ${key} (is X-Snapkeep-Size exposed?)`);
    }
    const modified = resp.headers.get('X-Snapkeep-Modified-Ms');
    return { key, size: Number(size), modified_ms: modified === null ? undefined : Number(modified) };
  }

  async list(prefix) {
    const out = [];
    let cursor = null;
    for (let page = 0; page < 100000; page++) {
      const q = new URLSearchParams({ prefix });
      if (cursor) q.set('cursor', cursor);
      const resp = await this.send(`${this.base}/objects?${q}`, { method: 'GET', headers: this.headers() }, prefix || '(listing)');
      let body;
      try {
        body = await resp.json();
      } catch (e) {
        throw storageError('Io', `${this.base} listed ${prefix || 'objects'} with a body that is not JSON`);
      }
      for (const o of body.objects || []) {
        out.push({ key: o.key, size: o.size, modified_ms: o.modified_ms ?? undefined });
      }
      cursor = body.cursor;
      if (!cursor) return out;
    }
    throw storageError('Io', `${this.base}: listing ${prefix} never ended`);
  }
}

function isTemp(path) {
  return path.split('/').some((p) => p.startsWith('.tmp-'));
}

function sliceOf(key, file, start, end) {
  if (start === undefined || start === null) return file;
  const size = file.size;
  const stop = end === undefined || end === null ? size : end;
  // The port's range rule (storage::clamp_range): start past the end fails,
  // an end past the object is cut.
  if (start > stop || start > size) {
    throw storageError('RangeInvalid', `range ${start}..${stop} outside ${key} (${size} bytes)`);
  }
  return file.slice(start, Math.min(stop, size));
}

async function readBlob(key, blob) {
  try {
    return new Uint8Array(await blob.arrayBuffer());
  } catch (e) {
    // A file that changed or vanished since it was picked.
    if (e && e.name === 'NotFoundError') throw storageError('NotFound', `${key} is gone from the folder`);
    throw storageError('Io', `reading ${key} from the folder failed (${e && e.message || e})`);
  }
}

/**
 * A folder given as File objects with paths relative to the repository
 * folder (from <input webkitdirectory> or a dropped folder's entries).
 */
export class FilesBackend {
  /** @param {string} name the folder's name; @param {{path:string,file:File}[]} entries */
  constructor(name, entries) {
    this.location = `folder ${name}`;
    this.files = new Map();
    for (const { path, file } of entries) {
      if (!path || isTemp(path)) continue;
      this.files.set(path, file);
    }
    this.keys = [...this.files.keys()].sort();
  }

  file(key) {
    const f = this.files.get(key);
    if (!f) throw storageError('NotFound', `${key} not found in ${this.location}`);
    return f;
  }

  async get(key, start, end) {
    const f = this.file(key);
    return readBlob(key, sliceOf(key, f, start, end));
  }

  async head(key) {
    const f = this.file(key);
    return { key, size: f.size, modified_ms: f.lastModified };
  }

  async list(prefix) {
    const out = [];
    for (const key of this.keys) {
      if (key.startsWith(prefix)) {
        const f = this.files.get(key);
        out.push({ key, size: f.size, modified_ms: f.lastModified });
      }
    }
    return out;
  }
}

function handleError(key, e, where) {
  const name = e && e.name;
  if (name === 'NotFoundError' || name === 'TypeMismatchError') {
    return storageError('NotFound', `${key} not found in ${where}`);
  }
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return storageError('Forbidden', `the browser did not allow reading ${key} in ${where} (${e.message})`);
  }
  return storageError('Io', `reading ${key} in ${where} failed (${e && e.message || e})`);
}

/** A folder given as a FileSystemDirectoryHandle (showDirectoryPicker, drop). */
export class HandleBackend {
  constructor(handle) {
    this.root = handle;
    this.location = `folder ${handle.name}`;
    this.dirs = new Map([['', handle]]);
  }

  async dir(path) {
    let d = this.dirs.get(path);
    if (d) return d;
    const cut = path.lastIndexOf('/');
    const parent = await this.dir(cut < 0 ? '' : path.slice(0, cut));
    d = await parent.getDirectoryHandle(path.slice(cut + 1));
    this.dirs.set(path, d);
    return d;
  }

  async file(key) {
    if (isTemp(key)) throw storageError('NotFound', `${key} not found in ${this.location}`);
    try {
      const cut = key.lastIndexOf('/');
      const d = await this.dir(cut < 0 ? '' : key.slice(0, cut));
      const h = await d.getFileHandle(key.slice(cut + 1));
      return await h.getFile();
    } catch (e) {
      throw handleError(key, e, this.location);
    }
  }

  async get(key, start, end) {
    const f = await this.file(key);
    return readBlob(key, sliceOf(key, f, start, end));
  }

  async head(key) {
    const f = await this.file(key);
    return { key, size: f.size, modified_ms: f.lastModified };
  }

  async list(prefix) {
    const out = [];
    const walk = async (dir, path) => {
      for await (const [name, h] of dir.entries()) {
        if (name.startsWith('.tmp-')) continue;
        const key = path + name;
        if (h.kind === 'directory') {
          const sub = `${key}/`;
          if (sub.startsWith(prefix) || prefix.startsWith(sub)) await walk(h, sub);
        } else if (key.startsWith(prefix)) {
          try {
            const f = await h.getFile();
            out.push({ key, size: f.size, modified_ms: f.lastModified });
          } catch (e) {
            if (e && e.name === 'NotFoundError') continue; // removed meanwhile
            throw handleError(key, e, this.location);
          }
        }
      }
    };
    try {
      // Start as deep as the prefix's folders allow.
      const cut = prefix.lastIndexOf('/');
      const start = cut < 0 ? '' : prefix.slice(0, cut);
      let d;
      try {
        d = await this.dir(start);
      } catch (e) {
        if (e && (e.name === 'NotFoundError' || e.name === 'TypeMismatchError')) return [];
        throw e;
      }
      await walk(d, start ? `${start}/` : '');
    } catch (e) {
      throw e.code ? e : handleError(prefix || '(listing)', e, this.location);
    }
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  }
}
