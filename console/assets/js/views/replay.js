// Session replay: the recording's events (statements with their decisions, results,
// timing, masking counts, notices) on a timeline that plays back at the pace they
// happened, with play/pause, step and speed; and whether the recording verifies.

import { api, seg } from '../api.js';
import { el, replace, facts, timeEl, badge, errorBox, micros } from '../dom.js';

const MAX_ROWS_SHOWN = 50;

function decisionBadge(d) {
  return badge(d, { allowed: 'ok', approved: 'ok', denied: 'bad', rejected: 'bad', held: 'warn' }[d] ?? '');
}

function resultTable(ev) {
  const rows = Array.isArray(ev.rows) ? ev.rows : [];
  const shown = rows.slice(0, MAX_ROWS_SHOWN);
  return el('div', { class: 'result table-wrap' },
    el('table', {},
      el('caption', { class: 'visually-hidden', text: `Rows of statement ${ev.statement}` }),
      el('thead', {}, el('tr', {}, (ev.columns ?? []).map((c) => el('th', { scope: 'col', text: c })))),
      el('tbody', {}, shown.map((r) => el('tr', {}, r.map((v) => el('td', {},
        v === null ? el('em', { class: 'muted', text: 'NULL' }) : el('code', { text: v }))))))),
    rows.length > shown.length ? el('p', { class: 'muted', text: `${rows.length - shown.length} more recorded rows not shown.` }) : null,
    ev.truncated ? el('p', { class: 'muted', text: 'The recording cap left out further rows.' }) : null);
}

// How a statement ended, and the rows the client received (in older recordings, a
// `result` event of their own).
function outcome(ev) {
  const masked = Object.entries(ev.masked ?? {});
  return [el('div', { class: 'row' },
    el('strong', { text: `Statement ${ev.statement} ${ev.error ? 'failed' : 'completed'}` }),
    ev.error ? badge(ev.error.code, 'bad') : badge(ev.tag ?? 'done', 'ok'),
    el('span', { class: 'muted', text: `${ev.rows} row${ev.rows === 1 ? '' : 's'} in ${micros(ev.duration_us)}` })),
  ev.error ? el('p', { class: 'error' }, el('span', { text: ev.error.message })) : null,
  ev.result ? resultTable({ ...ev.result, statement: ev.statement }) : null,
  masked.length ? el('p', {}, 'Masked: ', masked.map(([rule, n], i) => [i ? ', ' : '', el('code', { text: rule }), ` × ${n}`])) : null];
}

function describe(ev) {
  switch (ev.type) {
    case 'session_start':
      return [el('strong', { text: 'Session started' }),
        facts([
          ['Identity', `${ev.subject}${ev.display_name && ev.display_name !== ev.subject ? ` (${ev.display_name})` : ''}`],
          ['On behalf of', ev.actor ?? undefined],
          ['Credential', `${ev.credential_kind} from ${ev.issuer}`],
          ['Groups', (ev.groups ?? []).join(', ') || '—'],
          ['Client', ev.client_addr],
          ['Application', ev.application_name ?? undefined],
          ['Database role', `${ev.target_role}${ev.jit ? ' (just-in-time)' : ''}`],
        ])];
    case 'statement':
      return [
        el('div', { class: 'row' },
          el('strong', { text: `Statement ${ev.id}` }),
          badge(ev.class ?? 'unknown', 'info'),
          decisionBadge(ev.decision),
          el('span', { class: 'muted', text: ev.protocol === 'extended' ? 'extended protocol' : 'simple query' }),
          ev.redacted ? badge('secrets redacted', 'warn') : null),
        el('pre', { class: 'sql' }, el('code', { text: ev.sql ?? '' })),
        Array.isArray(ev.params) && ev.params.length
          ? el('p', {}, 'Parameters: ', ev.params.map((p, i) => [i ? ', ' : '', el('code', { text: `$${i + 1}` }), ' = ',
            p === null ? el('em', { text: 'NULL' }) : el('code', { text: p })]))
          : null,
        ev.reason ? el('p', {}, `${ev.decision === 'denied' ? 'Denied' : 'Decision'}: `, el('span', { text: ev.reason })) : null,
        // Usually the statement carries its completion; otherwise one follows on its own.
        ev.completion ? el('div', { class: 'completion' }, outcome(ev.completion)) : null,
      ];
    case 'result':
      return [el('span', { class: 'muted', text: `Rows returned to the client for statement ${ev.statement}` }), resultTable(ev)];
    case 'completion':
      return outcome(ev);
    case 'notice':
      return [el('div', { class: 'row' }, el('strong', { text: 'Notice' }), badge(ev.kind, 'warn')), el('p', { text: ev.message })];
    case 'session_end':
      return [el('div', { class: 'row' }, el('strong', { text: 'Session ended' }), badge(ev.reason, ev.reason === 'client_quit' ? 'ok' : 'warn'),
        el('span', { class: 'muted', text: `${ev.statements} statement${ev.statements === 1 ? '' : 's'}` })),
      ev.error ? el('p', { text: ev.error }) : null];
    default:
      return [el('strong', { text: ev.type ?? 'event' })];
  }
}

function itemClass(ev) {
  const kind = `ev-${ev.type ?? 'unknown'}`;
  return ev.type === 'statement' ? `${kind} ${ev.decision ?? ''}` : kind;
}

export async function render({ main, params }) {
  const id = params.id;
  replace(main, el('p', { text: 'Loading the recording…' }));
  const [session, events, verify] = await Promise.all([
    api(`/api/v1/sessions/${seg(id)}`),
    api(`/api/v1/sessions/${seg(id)}/events`),
    api(`/api/v1/sessions/${seg(id)}/verify`).catch((e) => ({ error: e.message })),
  ]);
  const list = Array.isArray(events) ? events : [];
  const start = list[0]?.at_us ?? 0;

  const verdict = verify.error
    ? errorBox(`The recording could not be verified: ${verify.error}`)
    : verify.clean
      ? el('p', { class: 'notice', id: 'verify-status' }, badge('verified', 'ok'),
        ` The recording's hash chain is intact (${verify.events} events${verify.status === 'live' ? ', still recording' : ''}).`)
      : el('div', { class: 'error', role: 'alert', id: 'verify-status' },
        el('p', {}, badge('tampered or incomplete', 'bad'), ' Verification found problems:'),
        el('ul', {}, (verify.problems ?? []).map((p) => el('li', { text: p }))));

  const items = list.map((ev) => el('li', { class: itemClass(ev), dataset: { seq: String(ev.seq) } },
    el('div', { class: 'when' }, `+${((ev.at_us - start) / 1_000_000).toFixed(3)} s · `,
      el('time', { datetime: new Date(ev.at_us / 1000).toISOString(), text: new Date(ev.at_us / 1000).toLocaleTimeString(undefined, { hour12: false }) })),
    describe(ev)));
  const timeline = el('ol', { class: 'timeline', id: 'timeline', 'aria-label': 'Recorded events' }, items);

  // Player: the first `pos` events are shown.
  let pos = items.length;
  let playing = false;
  let timer = null;
  const playButton = el('button', { type: 'button', id: 'play', text: 'Play' });
  const stepButton = el('button', { type: 'button', class: 'quiet', id: 'step', text: 'Step' });
  const allButton = el('button', { type: 'button', class: 'quiet', id: 'show-all', text: 'Show all' });
  const speed = el('select', { id: 'speed' },
    [['1', '1×'], ['4', '4×'], ['16', '16×'], ['0', 'No pauses']].map(([v, t]) => el('option', { value: v, selected: v === '4', text: t })));
  const progress = el('progress', { id: 'position', max: String(Math.max(items.length, 1)), value: String(pos), 'aria-label': 'Position in the recording' });
  const where = el('span', { id: 'position-text', 'aria-live': 'off' });

  function show() {
    items.forEach((li, i) => {
      li.hidden = i >= pos;
      li.classList.toggle('current', playing && i === pos - 1);
    });
    progress.value = pos;
    where.textContent = `${pos} of ${items.length} events`;
    playButton.textContent = playing ? 'Pause' : pos >= items.length ? 'Play from start' : 'Play';
    if (playing && items[pos - 1]) items[pos - 1].scrollIntoView({ block: 'nearest' });
  }

  function stop() {
    playing = false;
    clearTimeout(timer);
    timer = null;
    show();
  }

  function next() {
    if (pos >= items.length) return stop();
    pos += 1;
    show();
    if (pos >= items.length) return stop();
    const factor = Number(speed.value);
    const gapMs = (list[pos].at_us - list[pos - 1].at_us) / 1000;
    // Real gaps, sped up, within what a person can follow.
    const wait = factor === 0 ? 150 : Math.min(Math.max(gapMs / factor, 250), 2500);
    timer = setTimeout(next, wait);
    return undefined;
  }

  playButton.addEventListener('click', () => {
    if (playing) return stop();
    if (pos >= items.length) pos = 0;
    playing = true;
    next();
    return undefined;
  });
  stepButton.addEventListener('click', () => {
    if (playing) stop();
    if (pos >= items.length) pos = 0;
    pos += 1;
    show();
  });
  allButton.addEventListener('click', () => {
    if (playing) stop();
    pos = items.length;
    show();
  });

  const statements = list.filter((e) => e.type === 'statement').length;
  replace(main,
    el('p', {}, el('a', { href: '/sessions', text: '← Sessions' })),
    el('h1', { tabindex: '-1' }, 'Replay of session ', el('code', { text: session.id })),
    facts([
      ['Identity', session.actor ? `${session.subject} for ${session.actor}` : session.subject],
      ['Connection', session.connection],
      ['Status', badge(session.status, session.status === 'complete' ? 'ok' : 'info')],
      ['Started', timeEl(session.started_at)],
      ['Ended', session.ended_at ? el('span', {}, timeEl(session.ended_at), session.end_reason ? ` (${session.end_reason})` : '') : '—'],
      ['Statements', String(statements)],
    ]),
    verdict,
    el('div', { class: 'toolbar player', role: 'group', 'aria-label': 'Playback' },
      playButton, stepButton, allButton,
      el('label', { for: 'speed', class: 'inline' }, 'Speed '), speed,
      progress, where),
    list.length ? timeline : el('p', { class: 'empty', text: 'This recording has no events.' }));
  show();
  return () => clearTimeout(timer);
}
