// The reviews inbox: statements held for review, live from /api/v1/reviews/stream, each
// with its exact text and parameters and Approve / Reject; below, recent decisions.

import { api, ApiError, withQuery } from '../api.js';
import { follow } from '../sse.js';
import { el, replace, facts, timeEl, errorBox, shortId } from '../dom.js';
import { statusBadge, paramsTable, expiryText, decisionForm, decidedCell } from './common.js';

export async function render({ main, me, announce, allowed }) {
  // Replays are for auditors; approvers without that role get no dead link.
  const mayReplay = allowed(['auditor']);
  const pending = new Map(); // id -> review
  const recent = new Map();
  const cards = el('div', { class: 'cards', id: 'inbox' });
  const count = el('p', { id: 'inbox-count', 'aria-live': 'polite' });
  const streamState = el('span', { class: 'stream-state badge', id: 'stream-state', text: 'connecting' });
  const recentBody = el('tbody');
  const problems = el('div');

  replace(main,
    el('h1', { tabindex: '-1', text: 'Reviews' }),
    el('div', { class: 'toolbar' },
      el('p', { class: 'muted', text: 'Statements held until an approver decides. New ones appear here as they arrive.' }),
      el('span', { class: 'spacer' }),
      el('span', {}, 'Live updates: ', streamState)),
    problems,
    el('section', { 'aria-labelledby': 'pending-h' },
      el('h2', { id: 'pending-h', text: 'Waiting for a decision' }),
      count,
      cards),
    el('section', { 'aria-labelledby': 'recent-h' },
      el('h2', { id: 'recent-h', text: 'Recently decided' }),
      el('div', { class: 'table-wrap' }, el('table', { id: 'recent' },
        el('thead', {}, el('tr', {}, ['Status', 'Review', 'Requested by', 'Connection', 'Statement', 'Decided', 'Reason']
          .map((h) => el('th', { scope: 'col', text: h })))),
        recentBody))));

  function card(r, fresh) {
    const base = `review-${r.id}`;
    const expiry = el('span', { class: 'expiry muted', dataset: { expires: String(r.expires_at) }, text: expiryText(r.expires_at) });
    return el('article', { class: `card${fresh ? ' fresh' : ''}`, id: base, 'aria-labelledby': `${base}-h`, dataset: { id: r.id } },
      el('header', {},
        el('h3', { id: `${base}-h` }, 'Statement on ', el('span', { text: r.connection })),
        statusBadge(r.status),
        expiry),
      facts([
        ['Review', el('code', { text: r.id })],
        ['Requested by', el('span', {}, el('strong', { text: r.requester }),
          r.requester_groups?.length ? el('span', { class: 'muted', text: ` (${r.requester_groups.join(', ')})` }) : null)],
        ['Session', !r.session_id ? '—' : mayReplay
          ? el('a', { href: `/sessions/${encodeURIComponent(r.session_id)}`, 'aria-label': `Session ${r.session_id}` }, shortId(r.session_id))
          : shortId(r.session_id)],
        ['Rule', r.rule_message ?? '—'],
        ['Requested', timeEl(r.created_at)],
        ['Approvers', (r.approver_groups ?? []).join(', ') || '—'],
        ['Approvals needed', String(r.approvals_required ?? 1)],
      ]),
      el('pre', { class: 'sql', id: `${r.id}-what`, 'aria-label': 'Statement' }, el('code', { text: r.statement ?? '' })),
      paramsTable(r.params, base),
      decisionForm(r, {
        me,
        announce,
        onDone: (result) => {
          // A counted approval answers {request, approvals, …}; a final one the review.
          if (result?.id && !result.request) upsert(result, false);
        },
      }));
  }

  function renderCount() {
    const n = pending.size;
    count.textContent = n === 0 ? 'Nothing is waiting for a decision.' : `${n} ${n === 1 ? 'statement is' : 'statements are'} waiting for a decision.`;
  }

  function renderRecent() {
    const rows = [...recent.values()].sort((a, b) => (b.decided_at ?? b.created_at) - (a.decided_at ?? a.created_at)).slice(0, 25);
    replace(recentBody, rows.length === 0
      ? el('tr', {}, el('td', { colspan: '7', class: 'empty', text: 'No decisions yet.' }))
      : rows.map((r) => el('tr', { dataset: { id: r.id } },
        el('td', {}, statusBadge(r.status)),
        el('td', {}, el('code', { text: r.id })),
        el('td', { text: r.requester }),
        el('td', { text: r.connection }),
        el('td', { class: 'sql' }, el('code', { text: r.statement ?? '' })),
        el('td', {}, decidedCell(r)),
        el('td', { text: r.decision_reason ?? '' }))));
  }

  /** Applies one review (from the list or the stream). */
  function upsert(r, fromStream) {
    if (r.kind !== 'statement') return;
    const existing = document.getElementById(`review-${r.id}`);
    if (r.status === 'pending') {
      recent.delete(r.id);
      const isNew = !pending.has(r.id);
      pending.set(r.id, r);
      if (!existing) {
        cards.prepend(card(r, fromStream));
        if (fromStream && isNew) announce(`New review from ${r.requester} on ${r.connection}: ${(r.statement ?? '').slice(0, 80)}`);
      }
    } else {
      const was = pending.delete(r.id);
      recent.set(r.id, r);
      if (existing) {
        // Keep the card a moment if this tab decided it (its outcome is shown there).
        const own = existing.querySelector('.outcome .notice');
        if (own) setTimeout(() => existing.remove(), 1500);
        else existing.remove();
      }
      if (fromStream && was) announce(`Review ${r.id} was ${r.status}${r.decided_by ? ` by ${r.decided_by}` : ''}.`);
      renderRecent();
    }
    renderCount();
  }

  async function load() {
    try {
      const [now, all] = await Promise.all([
        api(withQuery('/api/v1/reviews', { status: 'pending', kind: 'statement', limit: 200 })),
        api(withQuery('/api/v1/reviews', { status: 'all', kind: 'statement', limit: 50 })),
      ]);
      // Cards for reviews no longer pending go.
      for (const id of [...pending.keys()]) {
        if (!now.some((r) => r.id === id)) {
          pending.delete(id);
          document.getElementById(`review-${id}`)?.remove();
        }
      }
      for (const r of all) if (r.status !== 'pending') recent.set(r.id, r);
      for (const r of now.sort((a, b) => a.created_at - b.created_at)) upsert(r, false);
      renderRecent();
      renderCount();
      problems.replaceChildren();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      problems.replaceChildren(errorBox(`Could not load reviews: ${e.message}`));
    }
  }

  await load();

  const stop = follow('/api/v1/reviews/stream', {
    onEvent: (ev) => {
      if (ev.type !== 'review') return;
      upsert(JSON.parse(ev.data), true);
    },
    onState: (s, detail) => {
      streamState.textContent = s === 'retrying' ? 'reconnecting' : s;
      streamState.className = `stream-state badge ${s === 'live' ? 'ok' : s === 'retrying' ? 'warn' : ''}`;
      streamState.title = detail ?? '';
      // Whatever happened before the stream (re)connected is read again.
      if (s === 'live') load();
    },
  });

  const timer = setInterval(() => {
    for (const node of cards.querySelectorAll('.expiry')) {
      const text = expiryText(Number(node.dataset.expires));
      if (node.textContent !== text) node.textContent = text;
      if (text === 'expired') node.closest('.card')?.querySelectorAll('.decide button').forEach((b) => { b.disabled = true; });
    }
  }, 1000);

  return () => {
    stop();
    clearInterval(timer);
  };
}
