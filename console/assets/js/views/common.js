// Pieces shared by the review and access-request views.

import { api, ApiError, seg } from '../api.js';
import { el, badge, timeEl, span, errorBox } from '../dom.js';

/** The badge for a request status. */
export function statusBadge(status) {
  const kind = { pending: 'warn', approved: 'ok', rejected: 'bad', expired: 'bad', withdrawn: '' }[status] ?? '';
  return badge(status, kind);
}

/** A table of Bind parameters (`$1` …; NULL shown as such), or a note when there are none. */
export function paramsTable(params, idBase) {
  if (!Array.isArray(params) || params.length === 0) {
    return el('p', { class: 'muted', id: `${idBase}-params`, text: 'No parameters.' });
  }
  return el('table', { class: 'params', id: `${idBase}-params` },
    el('caption', { text: `Parameters (${params.length})` }),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Placeholder' }), el('th', { scope: 'col', text: 'Value' }))),
    el('tbody', {}, params.map((p, i) => el('tr', {},
      el('th', { scope: 'row' }, el('code', { text: `$${i + 1}` })),
      el('td', {}, p === null ? el('em', { text: 'NULL' }) : el('code', { class: 'param', text: p }))))));
}

/** "expires in 4m 2s" / "expired", kept current by `tick`. */
export function expiryText(expiresAt) {
  const left = expiresAt - Date.now();
  return left > 0 ? `expires in ${span(left)}` : 'expired';
}

/**
 * Approve and Reject buttons with an optional reason, for request `r`. `onDone(result)`
 * gets the API's answer: the final request, or `{request, approvals, approvals_required}`
 * when more approvals are needed.
 */
export function decisionForm(r, { me, announce, onDone }) {
  const base = `decide-${r.id}`;
  const reason = el('input', { id: `${base}-reason`, name: 'reason', type: 'text', maxlength: '500', autocomplete: 'off' });
  const out = el('div', { class: 'outcome', role: 'status' });
  const own = me?.subject && me.subject === r.requester;
  const send = async (verdict, button) => {
    const buttons = form.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    out.replaceChildren(el('span', { text: verdict === 'approve' ? 'Approving…' : 'Rejecting…' }));
    try {
      const text = reason.value.trim();
      const result = await api(`/api/v1/reviews/${seg(r.id)}/${verdict}`, {
        method: 'POST',
        body: text ? { reason: text } : {},
      });
      const verb = verdict === 'approve' ? 'Approved' : 'Rejected';
      if (result && result.request && result.approvals_required) {
        out.replaceChildren(el('p', { class: 'notice', text: `Your approval counted: ${result.approvals} of ${result.approvals_required}.` }));
        announce(`Approval of ${r.id} counted, ${result.approvals} of ${result.approvals_required}.`);
      } else {
        out.replaceChildren(el('p', { class: 'notice', text: `${verb}.` }));
        announce(`${verb} ${r.id}.`);
      }
      onDone(result);
    } catch (e) {
      buttons.forEach((b) => { b.disabled = false; });
      const msg = e instanceof ApiError ? `${e.message}` : `The request failed: ${e.message}`;
      out.replaceChildren(errorBox(msg));
      button.focus();
    }
  };
  const approve = el('button', {
    type: 'button', class: 'approve', text: 'Approve', 'aria-describedby': `${r.id}-what`, disabled: own,
    on: { click: (ev) => send('approve', ev.currentTarget) },
  });
  const reject = el('button', {
    type: 'button', class: 'reject', text: 'Reject', 'aria-describedby': `${r.id}-what`, disabled: own,
    on: { click: (ev) => send('reject', ev.currentTarget) },
  });
  const form = el('div', { class: 'decide' },
    el('div', { class: 'field' }, el('label', { for: reason.id, text: 'Reason (optional)' }), reason),
    approve, reject);
  return el('div', {}, form,
    own ? el('p', { class: 'muted', text: 'You asked for this; another approver must decide.' }) : null,
    out);
}

/** When a request was made and decided, as table cells' content. */
export function decidedCell(r) {
  if (!r.decided_at) return el('span', { class: 'muted', text: '—' });
  return el('span', {}, timeEl(r.decided_at), r.decided_by ? ` by ${r.decided_by}` : '');
}
