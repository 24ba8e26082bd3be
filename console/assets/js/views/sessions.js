// Sessions: the live ones (refreshed every few seconds) with a Kill button for admins, and
// recent ones with a link to their replay.

import { api, ApiError, withQuery, seg } from '../api.js';
import { el, replace, timeEl, errorBox, shortId, badge, span } from '../dom.js';

const REFRESH_MS = 3000;

function statusBadge(s) {
  return badge(s, { live: 'info', complete: 'ok', incomplete: 'warn', purged: '' }[s] ?? '');
}

export async function render({ main, me, announce }) {
  const isAdmin = !me || !Array.isArray(me.roles) || me.roles.includes('admin');
  const liveBody = el('tbody');
  const recentBody = el('tbody');
  const problems = el('div', { 'aria-live': 'polite' });
  const updated = el('span', { class: 'muted' });

  // One confirmation dialog, reused: a kill ends someone's work.
  const dialogText = el('p');
  const dialog = el('dialog', { id: 'kill-dialog', 'aria-labelledby': 'kill-h' },
    el('form', { method: 'dialog' },
      el('h2', { id: 'kill-h', text: 'End this session?' }),
      dialogText,
      el('p', { class: 'muted', text: 'The client gets an error (57P01) and its connection closes. The recording notes who ended it.' }),
      el('div', { class: 'row' },
        el('button', { value: 'kill', class: 'danger', text: 'End session' }),
        el('button', { value: 'cancel', class: 'quiet', text: 'Cancel', autofocus: true }))));

  replace(main,
    el('h1', { tabindex: '-1', text: 'Sessions' }),
    el('div', { class: 'toolbar' },
      el('button', { type: 'button', class: 'quiet', text: 'Refresh', on: { click: () => refresh() } }),
      updated),
    problems,
    el('section', { 'aria-labelledby': 'live-h' },
      el('h2', { id: 'live-h', text: 'Live sessions' }),
      el('div', { class: 'table-wrap' }, el('table', { id: 'live-sessions' },
        el('thead', {}, el('tr', {},
          ['Session', 'Identity', 'Connection', 'Client', 'Database role', 'Started', 'Running for', 'Statements', isAdmin ? 'Action' : null]
            .filter(Boolean).map((h) => el('th', { scope: 'col', text: h })))),
        liveBody))),
    el('section', { 'aria-labelledby': 'recent-s-h' },
      el('h2', { id: 'recent-s-h', text: 'Recent sessions' }),
      el('div', { class: 'table-wrap' }, el('table', { id: 'recent-sessions' },
        el('thead', {}, el('tr', {},
          ['Session', 'Identity', 'Connection', 'Status', 'Started', 'Ended', 'Statements', 'End reason', 'Replay']
            .map((h) => el('th', { scope: 'col', text: h })))),
        recentBody))),
    dialog);

  function identity(s) {
    return el('span', {}, el('span', { text: s.subject }), s.actor ? el('span', { class: 'muted', text: ` for ${s.actor}` }) : null);
  }

  function confirmKill(s) {
    dialogText.replaceChildren('Session ', el('code', { text: s.id }), ' of ', el('strong', { text: s.subject }),
      ' on ', el('strong', { text: s.connection }), '.');
    dialog.returnValue = '';
    dialog.showModal();
    dialog.addEventListener('close', async () => {
      if (dialog.returnValue !== 'kill') return;
      try {
        await api(`/api/v1/sessions/${seg(s.id)}/kill`, { method: 'POST' });
        announce(`Session ${s.id} of ${s.subject} is ending.`);
        problems.replaceChildren(el('p', { class: 'notice' }, 'Ending session ', el('code', { text: s.id }), '.'));
      } catch (e) {
        problems.replaceChildren(errorBox(`Could not end the session: ${e.message}`));
      }
      refresh();
    }, { once: true });
  }

  async function refresh() {
    try {
      const [live, recent] = await Promise.all([
        api(withQuery('/api/v1/sessions', { status: 'live', limit: 500 })),
        api(withQuery('/api/v1/sessions', { limit: 50 })),
      ]);
      const now = Date.now();
      replace(liveBody, live.length === 0
        ? el('tr', {}, el('td', { colspan: isAdmin ? '9' : '8', class: 'empty', text: 'No live sessions.' }))
        : live.map((s) => el('tr', { dataset: { id: s.id, subject: s.subject } },
          el('td', {}, el('a', { href: `/sessions/${encodeURIComponent(s.id)}`, 'aria-label': `Session ${s.id}` }, shortId(s.id))),
          el('td', {}, identity(s)),
          el('td', { text: s.connection }),
          el('td', {}, el('code', { text: s.client_addr })),
          el('td', {}, el('code', { text: s.target_role })),
          el('td', {}, timeEl(s.started_at)),
          el('td', { class: 'num', text: span(now - s.started_at) }),
          el('td', { class: 'num', text: String(s.statements ?? 0) }),
          isAdmin ? el('td', {}, el('button', {
            type: 'button', class: 'danger', text: 'Kill',
            'aria-label': `Kill session of ${s.subject} on ${s.connection} (${s.id})`,
            on: { click: () => confirmKill(s) },
          })) : null)));
      replace(recentBody, recent.length === 0
        ? el('tr', {}, el('td', { colspan: '9', class: 'empty', text: 'No sessions recorded yet.' }))
        : recent.map((s) => el('tr', { dataset: { id: s.id, subject: s.subject } },
          el('td', {}, shortId(s.id)),
          el('td', {}, identity(s)),
          el('td', { text: s.connection }),
          el('td', {}, statusBadge(s.status)),
          el('td', {}, timeEl(s.started_at)),
          el('td', {}, timeEl(s.ended_at)),
          el('td', { class: 'num', text: String(s.statements ?? 0) }),
          el('td', { text: s.end_reason ?? '' }),
          el('td', {}, s.status === 'purged' ? el('span', { class: 'muted', text: 'purged' })
            : el('a', { href: `/sessions/${encodeURIComponent(s.id)}`, 'aria-label': `Replay session of ${s.subject} (${s.id})`, text: 'Replay' })))));
      updated.textContent = `Updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
      if (problems.querySelector('.error.load')) problems.replaceChildren();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      const box = errorBox(`Could not load sessions: ${e.message}`);
      box.classList.add('load');
      problems.replaceChildren(box);
    }
  }

  await refresh();
  // Not while the confirmation is open: the row it names must not vanish under it.
  const timer = setInterval(() => { if (!dialog.open) refresh(); }, REFRESH_MS);
  return () => {
    clearInterval(timer);
    if (dialog.open) dialog.close();
  };
}
