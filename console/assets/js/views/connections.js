// Connections: what the gateway fronts, how it gets credentials, and whether the caller
// may open it (or could ask for access).

import { api } from '../api.js';
import { el, replace, badge } from '../dom.js';

/** Fields shown first, in order; any other scalar field follows. */
const PREFERRED = ['name', 'kind', 'credentials', 'allowed', 'allow_groups', 'access_requests', 'idle_timeout', 'max_session'];
const SECRET_HINTS = /password|secret|token|key/i;

function label(key) {
  const s = key.replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function value(key, v) {
  if (v === null || v === undefined) return el('span', { class: 'muted', text: '—' });
  if (typeof v === 'boolean') {
    if (key === 'allowed') return badge(v ? 'yes' : 'no', v ? 'ok' : '');
    return el('span', { text: v ? 'yes' : 'no' });
  }
  if (Array.isArray(v)) return el('span', { text: v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') || '—' });
  if (typeof v === 'object') return el('code', { text: JSON.stringify(v) });
  return el('span', { text: String(v) });
}

export async function render({ main, config }) {
  const list = await api('/api/v1/connections');
  const rows = Array.isArray(list) ? list : [];
  const keys = [];
  for (const k of PREFERRED) if (rows.some((r) => r && k in r)) keys.push(k);
  for (const r of rows) {
    for (const k of Object.keys(r ?? {})) if (!keys.includes(k) && !SECRET_HINTS.test(k)) keys.push(k);
  }
  const pgListen = config?.postgres_listen;
  replace(main,
    el('h1', { tabindex: '-1', text: 'Connections' }),
    pgListen ? el('p', {}, 'Connect with any PostgreSQL client to ', el('code', { text: pgListen }),
      ' using the connection name as the database and your token as the password, or run ',
      el('code', { text: 'warden connect NAME' }), '.') : null,
    el('div', { class: 'table-wrap' }, el('table', { id: 'connections' },
      el('thead', {}, el('tr', {}, keys.map((k) => el('th', { scope: 'col', text: label(k) })), el('th', { scope: 'col', text: 'Access' }))),
      el('tbody', {}, rows.length === 0
        ? el('tr', {}, el('td', { colspan: String(keys.length + 1), class: 'empty', text: 'No connections are configured.' }))
        : rows.map((c) => el('tr', { dataset: { name: c.name } },
          keys.map((k) => (k === 'name' ? el('th', { scope: 'row', text: c.name }) : el('td', {}, value(k, c[k])))),
          el('td', {}, c.allowed === true ? el('span', { class: 'muted', text: 'You may connect' })
            : el('a', { href: `/access?connection=${encodeURIComponent(c.name)}`, text: 'Request access' }))))))));
}
