// A virtualised list: a scrolling viewport that holds only the rows in
// view (plus a few either side), absolutely positioned inside a spacer as
// tall as all rows. Short lists (up to `threshold` rows) are rendered whole.
// Rows are `rowHeight` tall at least and grow to fit what they hold (a long
// name wraps rather than being cut): each row rendered is measured, and the
// rows after it move. Rows not yet rendered count as `rowHeight`.
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
    /** Measured heights; rows never rendered keep rowHeight. */
    this.heights = new Float64Array(0);
    /** tops[i]: where row i starts; tops[count]: the total height. */
    this.tops = new Float64Array(1);
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    this.spacer.setAttribute('role', 'presentation');
    viewport.replaceChildren(this.spacer);
    this.frame = 0;
    this.first = 0;
    this.last = -1;
    this.width = 0;
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    viewport.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.onResize()).observe(viewport);
  }

  /** Shows `n` rows from the top (rows are rendered afresh). */
  setCount(n) {
    this.count = n;
    for (const r of this.rows.values()) r.remove();
    this.rows.clear();
    this.first = 0;
    this.last = -1;
    this.heights = new Float64Array(n).fill(this.rowHeight);
    this.tops = new Float64Array(n + 1);
    this.layout(0);
    // Short lists get a short viewport; long ones stop at the CSS height.
    this.viewport.style.height = `min(62vh, 620px, ${Math.max(3, n) * this.rowHeight + 2}px)`;
    this.viewport.scrollTop = 0;
    this.render();
  }

  /** Recomputes the tops from row `from` on, and the spacer's height. */
  layout(from) {
    for (let i = from; i < this.count; i++) this.tops[i + 1] = this.tops[i] + this.heights[i];
    this.spacer.style.height = `${this.tops[this.count]}px`;
    // A list shorter than its viewport's cap shows whole, however tall its rows.
    if (this.count && this.count <= this.threshold) {
      this.viewport.style.height = `min(62vh, 620px, ${Math.max(3 * this.rowHeight, this.tops[this.count]) + 2}px)`;
    }
  }

  /** The row at height `y` (binary search over the tops). */
  rowAt(y) {
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.tops[mid] <= y) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** A new width wraps names differently: measure every row again. */
  onResize() {
    const w = this.viewport.clientWidth;
    if (w !== this.width) {
      this.width = w;
      for (const r of this.rows.values()) r.remove();
      this.rows.clear();
      this.first = 0;
      this.last = -1;
    }
    this.schedule();
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
    const first = Math.max(0, this.rowAt(top) - this.overscan);
    const last = Math.min(this.count - 1, this.rowAt(top + h) + this.overscan);
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
    const added = [];
    for (let i = first; i <= last; i++) {
      if (this.rows.has(i)) continue;
      const row = this.renderRow(i);
      row.style.minHeight = `${this.rowHeight}px`;
      row.classList.add('vlist-row');
      row.dataset.index = String(i);
      this.rows.set(i, row);
      added.push(i);
      fragment.append(row);
    }
    this.spacer.append(fragment);
    this.first = first;
    this.last = last;
    this.measure(added);
  }

  /** Takes the heights of the rows just rendered; moves the rows after a changed one, keeping the view still. */
  measure(added) {
    let from = -1;
    let above = 0;
    const anchor = this.rowAt(this.viewport.scrollTop);
    for (const i of added) {
      const h = this.rows.get(i).offsetHeight || this.rowHeight;
      if (h === this.heights[i]) continue;
      if (i < anchor) above += h - this.heights[i];
      this.heights[i] = h;
      if (from < 0 || i < from) from = i;
    }
    if (from >= 0) this.layout(from);
    for (const [i, r] of this.rows) r.style.top = `${this.tops[i]}px`;
    if (above) this.viewport.scrollTop += above;
  }

  /** Scrolls so row `i` is in view and focuses its first control. */
  focusRow(i) {
    if (this.count === 0) return;
    i = Math.max(0, Math.min(this.count - 1, i));
    const vp = this.viewport;
    if (this.tops[i] < vp.scrollTop) vp.scrollTop = this.tops[i];
    else if (this.tops[i + 1] > vp.scrollTop + vp.clientHeight) vp.scrollTop = this.tops[i + 1] - vp.clientHeight;
    this.render();
    const row = this.rows.get(i);
    if (!row) return;
    // Measuring may have moved it.
    if (this.tops[i + 1] > vp.scrollTop + vp.clientHeight) vp.scrollTop = this.tops[i + 1] - vp.clientHeight;
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
