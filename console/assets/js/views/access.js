// Access requests: ask for time-bound access to a connection; approvers decide pending
// requests (live from the review stream); everyone sees the requests they may see.

import { api, ApiError, withQuery } from '../api.js';
import { follow } from '../sse.js';
import { el, replace, facts, timeEl, span, errorBox } from '../dom.js';
import { statusBadge, decisionForm, decidedCell, expiryText } from './common.js';

export async function render({ main, me, announce }) {
  const requests = new Map();
  const problems = el('div');
  const pendingBox = el('div', { class: 'cards', id: 'access-pending' });
  const pendingCount = el('p', { 'aria-live': 'polite' });
  const tableBody = el('tbody');
  const formStatus = el('div', { role: 'status' });

  let names = [];
  try {
    const list = await api('/api/v1/connections');
    names = (Array.isArray(list) ? list : []).map((c) => c.name).filter(Boolean);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return undefined;
  }
  const wanted = new URLSearchParams(location.search).get('connection') ?? '';
  const connection = names.length
    ? el('select', { id: 'ar-connection', name: 'connection', required: true },
      names.map((n) => el('option', { value: n, selected: n === wanted, text: n })))
    : el('input', { id: 'ar-connection', name: 'connection', required: true, value: wanted, autocomplete: 'off' });
  const duration = el('input', {
    id: 'ar-duration', name: 'duration', required: true, value: '1h', pattern: '\\s*\\d+\\s*[a-z]+(\\s*\\d+\\s*[a-z]+)*\\s*',
    'aria-describedby': 'ar-duration-hint', autocomplete: 'off',
  });
  const reason = el('textarea', { id: 'ar-reason', name: 'reason', rows: '2', maxlength: '500' });

  const form = el('form', {
    class: 'panel', 'aria-labelledby': 'ask-h',
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        const button = form.querySelector('button[type=submit]');
        button.disabled = true;
        formStatus.replaceChildren();
        try {
          const body = { connection: connection.value.trim(), duration: duration.value.trim() };
          if (reason.value.trim()) body.reason = reason.value.trim();
          const r = await api('/api/v1/access-requests', { method: 'POST', body });
          formStatus.replaceChildren(el('p', { class: 'notice' },
            'Requested ', el('code', { text: r.id }), ` — ${r.status}. An approver of ${r.connection} will decide.`));
          announce(`Access request ${r.id} sent.`);
          reason.value = '';
          upsert(r);
        } catch (e) {
          formStatus.replaceChildren(errorBox(e instanceof ApiError ? e.message : `The request failed: ${e.message}`));
        } finally {
          button.disabled = false;
        }
      },
    },
  },
  el('h2', { id: 'ask-h', text: 'Request access' }),
  el('div', { class: 'row' },
    el('div', { class: 'field' }, el('label', { for: 'ar-connection', text: 'Connection' }), connection),
    el('div', { class: 'field' },
      el('label', { for: 'ar-duration', text: 'For how long' }), duration,
      el('div', { id: 'ar-duration-hint', class: 'hint', text: 'e.g. 30m, 2h; the window starts at approval' }))),
  el('div', { class: 'field' }, el('label', { for: 'ar-reason', text: 'Reason' }), reason),
  el('button', { type: 'submit', text: 'Request access' }),
  formStatus);

  replace(main,
    el('h1', { tabindex: '-1', text: 'Access requests' }),
    problems,
    form,
    el('section', { 'aria-labelledby': 'ar-pending-h' },
      el('h2', { id: 'ar-pending-h', text: 'Waiting for a decision' }),
      pendingCount,
      pendingBox),
    el('section', { 'aria-labelledby': 'ar-all-h' },
      el('h2', { id: 'ar-all-h', text: 'All requests' }),
      el('div', { class: 'table-wrap' }, el('table', { id: 'access-all' },
        el('thead', {}, el('tr', {}, ['Status', 'Request', 'Requested by', 'Connection', 'Duration', 'Reason', 'Decided', 'Access until']
          .map((h) => el('th', { scope: 'col', text: h })))),
        tableBody))));

  function pendingCard(r) {
    const base = `access-${r.id}`;
    return el('article', { class: 'card', id: base, 'aria-labelledby': `${base}-h` },
      el('header', {},
        el('h3', { id: `${base}-h` }, 'Access to ', el('span', { text: r.connection })),
        statusBadge(r.status),
        el('span', { class: 'muted', text: expiryText(r.expires_at) })),
      facts([
        ['Request', el('code', { text: r.id })],
        ['Requested by', el('strong', { text: r.requester })],
        ['For', span(r.duration_ms)],
        ['Requested', timeEl(r.created_at)],
      ]),
      el('p', { id: `${r.id}-what` }, 'Reason: ', el('span', { text: r.reason || '(none given)' })),
      decisionForm(r, { me, announce, onDone: (res) => { if (res?.id) upsert(res); } }));
  }

  function draw() {
    const all = [...requests.values()].sort((a, b) => b.created_at - a.created_at);
    const pending = all.filter((r) => r.status === 'pending');
    // Keep cards (and what is typed into them) that are still pending.
    for (const node of [...pendingBox.children]) {
      if (!pending.some((r) => `access-${r.id}` === node.id)) node.remove();
    }
    for (const r of pending) {
      if (!document.getElementById(`access-${r.id}`)) pendingBox.prepend(pendingCard(r));
    }
    pendingCount.textContent = pending.length ? `${pending.length} waiting.` : 'Nothing is waiting for a decision.';
    replace(tableBody, all.length === 0
      ? el('tr', {}, el('td', { colspan: '8', class: 'empty', text: 'No access requests.' }))
      : all.map((r) => el('tr', { dataset: { id: r.id } },
        el('td', {}, statusBadge(r.status)),
        el('td', {}, el('code', { text: r.id })),
        el('td', { text: r.requester }),
        el('td', { text: r.connection }),
        el('td', { text: span(r.duration_ms) }),
        el('td', { text: r.reason ?? '' }),
        el('td', {}, decidedCell(r)),
        el('td', {}, r.grant_expires_at ? timeEl(r.grant_expires_at) : '—'))));
  }

  function upsert(r) {
    if (r.kind !== 'access') return;
    requests.set(r.id, r);
    draw();
  }

  async function load() {
    try {
      const list = await api(withQuery('/api/v1/reviews', { kind: 'access', status: 'all', limit: 200 }));
      requests.clear();
      for (const r of list) requests.set(r.id, r);
      draw();
      problems.replaceChildren();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      problems.replaceChildren(errorBox(`Could not load access requests: ${e.message}`));
    }
  }

  await load();
  const stop = follow('/api/v1/reviews/stream', {
    onEvent: (ev) => {
      if (ev.type !== 'review') return;
      const r = JSON.parse(ev.data);
      if (r.kind === 'access') {
        if (r.status === 'pending' && !requests.has(r.id)) announce(`New access request from ${r.requester} for ${r.connection}.`);
        upsert(r);
      }
    },
    onState: (s) => { if (s === 'live') load(); },
  });
  return stop;
}
