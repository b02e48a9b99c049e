// A small promise-based RPC to the inspector's Web Worker (worker.js).
// request(op, ...args) posts {id, op, args} and resolves with the worker's
// value, or rejects with an Error carrying the worker's message and code.

export class WorkerRpc {
  constructor(url) {
    this.url = url;
    this.nextId = 1;
    this.pending = new Map();
    this.worker = null;
    this.start();
  }

  start() {
    const w = new Worker(this.url, { type: 'module' });
    w.onmessage = (event) => this.receive(event.data);
    w.onerror = (event) => {
      event.preventDefault();
      this.failAll(`the inspector's worker failed (${event.message || 'could not start'})`);
    };
    w.onmessageerror = () => this.failAll('a message from the worker could not be read');
    this.worker = w;
  }

  /** Replaces a crashed worker; whatever was open there is gone. */
  restart() {
    if (this.worker) this.worker.terminate();
    this.failAll('the inspector was restarted');
    this.start();
  }

  failAll(message) {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(new Error(message));
  }

  receive({ id, ok, value, error }) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (ok) {
      p.resolve(value);
      return;
    }
    const e = new Error(error.message);
    if (error.code) e.code = error.code;
    if (error.name) e.kind = error.name;
    p.reject(e);
    if (error.fatal) this.restart();
  }

  request(op, ...args) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ id, op, args });
      } catch (e) {
        this.pending.delete(id);
        reject(new Error(`could not send ${op} to the worker (${e.message})`));
      }
    });
  }
}
