// A small promise-based RPC to the inspector's Web Worker (worker.js).
// request(op, ...args) posts {id, op, args} and resolves with the worker's
// value, or rejects with an Error carrying the worker's message and code.
// stream(op, onPart, ...args) is the same, and also hands every
// {id, part} message the worker posts before its answer to onPart.
//
// A worker that dies (fails to load, crashes, a message that cannot be
// read) is replaced: requests waiting on it reject, a fresh worker starts,
// and onRestart(reason) tells the page that whatever was open is gone.

export class WorkerRpc {
  /** @param {URL|string} url @param {{onRestart?: (reason: string) => void}} [options] */
  constructor(url, { onRestart } = {}) {
    this.url = url;
    this.onRestart = onRestart || null;
    this.nextId = 1;
    this.pending = new Map();
    this.worker = null;
    /** Whether the current worker ever answered (it loaded and ran). */
    this.answered = false;
    this.start();
  }

  start() {
    const w = new Worker(this.url, { type: 'module' });
    w.onmessage = (event) => {
      if (w !== this.worker) return;
      this.answered = true;
      this.receive(event.data);
    };
    w.onerror = (event) => {
      event.preventDefault();
      if (w !== this.worker) return;
      this.died(`the inspector's worker failed (${event.message || 'it could not start'})`);
    };
    w.onmessageerror = () => {
      if (w !== this.worker) return;
      this.died('a message from the inspector\'s worker could not be read');
    };
    this.worker = w;
    this.answered = false;
  }

  /**
   * Replaces a dead or crashed worker; whatever was open there is gone.
   * A worker that never answered is not restarted straight away (it would
   * most likely fail to load again, in a loop): the next request starts one.
   */
  died(reason) {
    const old = this.worker;
    const worked = this.answered;
    this.worker = null;
    if (old) {
      try {
        old.terminate();
      } catch {
        /* already gone */
      }
    }
    this.failAll(reason);
    if (worked) this.start();
    // After the rejections above have reached their callers.
    if (this.onRestart) setTimeout(() => this.onRestart(reason), 0);
  }

  /** For a trap reported by the worker itself (its wasm instance is unusable). */
  restart(reason = 'the inspector crashed') {
    this.died(reason);
  }

  failAll(message) {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) {
      const e = new Error(message);
      e.code = 'Restarted';
      p.reject(e);
    }
  }

  receive({ id, ok, value, error, part }) {
    const p = this.pending.get(id);
    if (!p) return;
    if (part !== undefined) {
      if (p.onPart) {
        try {
          p.onPart(part);
        } catch (e) {
          // The page could not take the part: the answer fails with that.
          p.partError = p.partError || e;
        }
      }
      return;
    }
    this.pending.delete(id);
    if (ok) {
      if (p.partError) p.reject(p.partError);
      else p.resolve(value);
      return;
    }
    const e = new Error(error.message);
    if (error.code) e.code = error.code;
    if (error.name) e.kind = error.name;
    p.reject(e);
    if (error.fatal) this.restart(error.message);
  }

  request(op, ...args) {
    return this.send(op, args, null);
  }

  stream(op, onPart, ...args) {
    return this.send(op, args, onPart);
  }

  send(op, args, onPart) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.worker) this.start();
      this.pending.set(id, { resolve, reject, onPart, partError: null });
      try {
        this.worker.postMessage({ id, op, args });
      } catch (e) {
        this.pending.delete(id);
        reject(new Error(`could not send ${op} to the worker (${e.message})`));
      }
    });
  }
}
