// A virtualised list: a scrolling viewport that holds only the rows in
// view (plus a few either side), absolutely positioned inside a spacer as
// tall as all rows. Short lists (up to `threshold` rows) are rendered whole.
// Arrow keys, Page Up/Down, Home and End move between rows' first control.

export class VirtualList {
  /**
   * @param {HTMLElement} viewport the scrolling element (its height comes from CSS)
   * @param {{rowHeight:number, renderRow:(i:number)=>HTMLElement, threshold?:number, overscan?:number}} opts
   */
  constructor(viewport, { rowHeight, renderRow, threshold = 500, overscan = 12 }) {
    this.viewport = viewport;
    this.rowHeight = rowHeight;
    this.renderRow = renderRow;
    this.threshold = threshold;
    this.overscan = overscan;
    this.count = 0;
    this.rows = new Map();
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    this.spacer.setAttribute('role', 'presentation');
    viewport.replaceChildren(this.spacer);
    this.frame = 0;
    this.first = 0;
    this.last = -1;
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    viewport.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.schedule()).observe(viewport);
  }

  /** Shows `n` rows from the top (rows are rendered afresh). */
  setCount(n) {
    this.count = n;
    for (const r of this.rows.values()) r.remove();
    this.rows.clear();
    this.first = 0;
    this.last = -1;
    this.spacer.style.height = `${n * this.rowHeight}px`;
    // Short lists get a short viewport; long ones stop at the CSS height.
    this.viewport.style.height = `min(62vh, 620px, ${Math.max(3, n) * this.rowHeight + 2}px)`;
    this.viewport.scrollTop = 0;
    this.render();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  range() {
    if (this.count <= this.threshold) return [0, this.count - 1];
    const h = this.viewport.clientHeight || 600;
    const top = this.viewport.scrollTop;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - this.overscan);
    const last = Math.min(this.count - 1, Math.ceil((top + h) / this.rowHeight) + this.overscan);
    return [first, last];
  }

  render() {
    const [first, last] = this.range();
    if (first === this.first && last === this.last && this.rows.size === Math.max(0, last - first + 1)) return;
    const focused = this.viewport.contains(document.activeElement) ? document.activeElement : null;
    for (const [i, r] of this.rows) {
      if (i < first || i > last) {
        // Keep the focused row, or focus would fall back to <body>.
        if (focused && r.contains(focused)) continue;
        r.remove();
        this.rows.delete(i);
      }
    }
    const fragment = document.createDocumentFragment();
    for (let i = first; i <= last; i++) {
      if (this.rows.has(i)) continue;
      const row = this.renderRow(i);
      row.style.top = `${i * this.rowHeight}px`;
      row.style.height = `${this.rowHeight}px`;
      row.classList.add('vlist-row');
      row.dataset.index = String(i);
      this.rows.set(i, row);
      fragment.append(row);
    }
    this.spacer.append(fragment);
    this.first = first;
    this.last = last;
  }

  /** Scrolls so row `i` is in view and focuses its first control. */
  focusRow(i) {
    if (this.count === 0) return;
    i = Math.max(0, Math.min(this.count - 1, i));
    const top = i * this.rowHeight;
    const vp = this.viewport;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + this.rowHeight > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + this.rowHeight - vp.clientHeight;
    this.render();
    const row = this.rows.get(i);
    if (!row) return;
    const target = row.querySelector('button, a, [tabindex]') || row;
    if (target === row) row.tabIndex = -1;
    target.focus({ preventScroll: true });
  }

  onKey(e) {
    if (!this.count || e.altKey || e.metaKey) return;
    const row = e.target.closest && e.target.closest('.vlist-row');
    const at = row ? Number(row.dataset.index) : -1;
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / this.rowHeight) - 1);
    const moves = {
      ArrowDown: at + 1,
      ArrowUp: at - 1,
      PageDown: at + page,
      PageUp: at - page,
      Home: 0,
      End: this.count - 1,
    };
    if (!(e.key in moves)) return;
    e.preventDefault();
    this.focusRow(Math.max(0, moves[e.key]));
  }
}
