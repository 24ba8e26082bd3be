// The audit trail: whether the hash chains verify, the latest events, and an export.

import { api, ApiError, withQuery } from '../api.js';
import { el, replace, timeEl, badge, errorBox } from '../dom.js';

/** Columns shown first when present; any other field follows. */
const PREFERRED = ['at', 'kind', 'event', 'subject', 'issuer', 'credential_kind', 'connection', 'client_addr', 'result', 'reason', 'session_id'];
const TIME_FIELDS = new Set(['at', 'at_ms', 'time', 'created_at']);
const HIDDEN = new Set(['prev_hash', 'hash', 'id']);

function label(key) {
  const s = key.replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function cell(key, value) {
  if (value === null || value === undefined) return el('td', { class: 'muted', text: '—' });
  if (TIME_FIELDS.has(key) && typeof value === 'number') return el('td', {}, timeEl(value));
  if (key === 'result') return el('td', {}, badge(String(value), value === 'allowed' ? 'ok' : value === 'denied' ? 'bad' : ''));
  if (key === 'session_id') return el('td', {}, el('a', { href: `/sessions/${encodeURIComponent(value)}` }, el('code', { text: String(value).slice(0, 8) })));
  if (typeof value === 'object') return el('td', {}, el('code', { text: JSON.stringify(value) }));
  return el('td', { text: String(value) });
}

export async function render({ main }) {
  const status = el('div', { id: 'audit-verify', 'aria-live': 'polite' }, el('p', { text: 'Verifying…' }));
  const body = el('div');
  const limit = el('select', { id: 'audit-limit' }, ['50', '200', '1000'].map((v) => el('option', { value: v, text: v })));
  const exportStatus = el('span', { role: 'status' });

  async function verify() {
    status.replaceChildren(el('p', { text: 'Verifying…' }));
    try {
      const v = await api('/api/v1/audit/verify');
      status.replaceChildren(v.clean
        ? el('p', { class: 'notice' }, badge('verified', 'ok'),
          ` The audit chains are intact: ${v.audit_rows} authentication events and ${v.session_rows} session records check out.`)
        : el('div', { class: 'error', role: 'alert' },
          el('p', {}, badge('broken', 'bad'), ' The audit chains do not verify:'),
          el('ul', {}, (v.problems ?? []).map((p) => el('li', { text: typeof p === 'string' ? p : JSON.stringify(p) })))));
    } catch (e) {
      status.replaceChildren(errorBox(`Could not verify the audit: ${e.message}`));
    }
  }

  async function load() {
    try {
      const rows = await api(withQuery('/api/v1/audit', { limit: limit.value }));
      const list = Array.isArray(rows) ? rows : (rows?.events ?? []);
      const keys = [];
      for (const k of PREFERRED) if (list.some((r) => r && k in r)) keys.push(k);
      for (const r of list) for (const k of Object.keys(r ?? {})) if (!keys.includes(k) && !HIDDEN.has(k)) keys.push(k);
      replace(body, el('div', { class: 'table-wrap' }, el('table', { id: 'audit-events' },
        el('caption', { text: `The latest ${list.length} audit events` }),
        el('thead', {}, el('tr', {}, keys.map((k) => el('th', { scope: 'col', text: label(k) })))),
        el('tbody', {}, list.length === 0
          ? el('tr', {}, el('td', { colspan: String(Math.max(keys.length, 1)), class: 'empty', text: 'No audit events yet.' }))
          : list.map((r) => el('tr', {}, keys.map((k) => cell(k, r[k]))))))));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      replace(body, errorBox(`Could not load the audit trail: ${e.message}`));
    }
  }

  async function download(format) {
    exportStatus.textContent = 'Preparing…';
    try {
      const res = await api(withQuery('/api/v1/audit/export', { format }), { raw: true });
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: `warden-audit.${format}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      exportStatus.textContent = `Downloaded warden-audit.${format}.`;
    } catch (e) {
      exportStatus.textContent = `Export failed: ${e.message}`;
    }
  }

  limit.addEventListener('change', load);
  replace(main,
    el('h1', { tabindex: '-1', text: 'Audit trail' }),
    el('section', { 'aria-labelledby': 'verify-h' },
      el('h2', { id: 'verify-h', text: 'Verification' }),
      status,
      el('button', { type: 'button', class: 'quiet', text: 'Verify again', on: { click: verify } })),
    el('section', { 'aria-labelledby': 'events-h' },
      el('h2', { id: 'events-h', text: 'Events' }),
      el('div', { class: 'toolbar' },
        el('label', { for: 'audit-limit', class: 'inline', text: 'Show' }), limit,
        el('span', { class: 'spacer' }),
        el('button', { type: 'button', class: 'quiet', text: 'Export JSON lines', on: { click: () => download('jsonl') } }),
        el('button', { type: 'button', class: 'quiet', text: 'Export CSV', on: { click: () => download('csv') } }),
        exportStatus),
      body));
  await Promise.all([verify(), load()]);
}
