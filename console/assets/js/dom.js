// DOM helpers. Every string that reaches the page goes through a text node or
// `textContent`: statements, parameters and names are attacker-controlled, so nothing in
// the console ever assigns HTML.

/**
 * Creates an element. `attrs` keys: `class`, `text` (textContent), `on` ({event: fn}),
 * `dataset` ({key: value}), booleans (`hidden`, `disabled`) and plain attributes.
 * Children may be nodes, strings (text nodes), arrays, or null/undefined/false (skipped).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

/** Appends children (see `el`) to `node`. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Removes every child of `node`, then appends `children`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A time (unix ms) as local date and time, or an em dash. */
export function when(ms) {
  if (ms === null || ms === undefined || ms === '') return '—';
  const d = new Date(typeof ms === 'number' ? ms : Date.parse(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return d.toLocaleString(undefined, { hour12: false });
}

/** `<time>` for a unix-ms instant, with the ISO form as its machine-readable value. */
export function timeEl(ms) {
  if (ms === null || ms === undefined) return el('span', { text: '—' });
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return el('span', { text: String(ms) });
  return el('time', { datetime: d.toISOString(), text: when(ms) });
}

/** A duration in ms as `1h 2m`, `3m 4s` or `5s`. */
export function span(ms) {
  if (!Number.isFinite(ms)) return '—';
  const neg = ms < 0;
  let s = Math.round(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const out = h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
  return neg ? `-${out}` : out;
}

/** Microseconds as a short human duration (`0.42 ms`, `1.3 s`). */
export function micros(us) {
  if (!Number.isFinite(us)) return '—';
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

/** A `<dl>` from [term, value] pairs; values may be nodes or strings. */
export function facts(pairs, cls = 'facts') {
  return el('dl', { class: cls }, pairs
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [el('dt', { text: k }), el('dd', {}, v ?? '—')]));
}

/** A small status badge. */
export function badge(text, kind = '') {
  return el('span', { class: `badge ${kind}`.trim(), text });
}

/** A first-class error message box (role=alert). */
export function errorBox(message) {
  return el('p', { class: 'error', role: 'alert', text: message });
}

/** A short form of a long id (first 8 characters), with the full id as its title. */
export function shortId(id) {
  const s = String(id ?? '');
  return el('code', { title: s, text: s.length > 12 ? `${s.slice(0, 8)}…` : s });
}

/** Moves keyboard focus to `node` without scrolling surprises. */
export function focus(node) {
  if (!node) return;
  if (!node.hasAttribute('tabindex') && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(node.tagName)) {
    node.setAttribute('tabindex', '-1');
  }
  node.focus({ preventScroll: false });
}
