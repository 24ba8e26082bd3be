// Server-sent events over fetch(): EventSource cannot send an Authorization header, so the
// stream is read with a ReadableStream and parsed here (WHATWG "event stream" format).
// The connection is re-opened with exponential back-off and jitter when it drops.

import { authHeaders, unauthorized } from './api.js';

/** Splits an event-stream text into events; returns `[events, rest]`. */
export function parseEvents(buffer) {
  const events = [];
  // Events end at a blank line; normalise CRLF / CR first.
  const text = buffer.replace(/\r\n?/g, '\n');
  const blocks = text.split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let type = 'message';
    const data = [];
    let id = null;
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (data.length) events.push({ type, data: data.join('\n'), id });
  }
  return [events, rest];
}

/**
 * Follows `url` until the returned function is called. `onEvent({type, data, id})` for
 * each event; `onState('connecting' | 'live' | 'retrying' | 'stopped', detail)` as the
 * connection changes (`live` again after a reconnect, so callers can re-read what they
 * may have missed); `onUnauthorized()` on a 401, which stops the stream.
 */
export function follow(url, { onEvent, onState = () => {}, onUnauthorized = unauthorized }) {
  const ctrl = new AbortController();
  const { signal } = ctrl;
  let delay = 1000;

  const pause = (ms) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

  (async () => {
    while (!signal.aborted) {
      onState('connecting');
      let why = 'the stream ended';
      try {
        const res = await fetch(url, {
          headers: { accept: 'text/event-stream', ...authHeaders() },
          signal,
          cache: 'no-store',
          credentials: 'omit',
        });
        if (res.status === 401) {
          onState('stopped', 'signed out');
          onUnauthorized();
          return;
        }
        if (!res.ok || !res.body) {
          why = `HTTP ${res.status}`;
        } else {
          onState('live');
          delay = 1000;
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            const [events, rest] = parseEvents(buffer);
            buffer = rest;
            for (const ev of events) {
              try {
                onEvent(ev);
              } catch (e) {
                // A bad event must not end the stream; say so where a developer looks.
                console.warn('event handler failed', e);
              }
            }
          }
        }
      } catch (e) {
        if (signal.aborted) break;
        why = e?.message ?? String(e);
      }
      if (signal.aborted) break;
      const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
      onState('retrying', `${why}; reconnecting in ${Math.ceil(wait / 1000)} s`);
      await pause(wait);
      delay = Math.min(delay * 2, 30_000);
    }
    onState('stopped');
  })();

  return () => ctrl.abort();
}
