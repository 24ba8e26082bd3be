// Unit tests of the console's event-stream parser (console/assets/js/sse.js), run with
// `node --test` (no browser): CRLF and CR line ends, comments (the gateway's keep-alive
// pings), multi-line data, events split across reads.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseEvents } from '../../console/assets/js/sse.js';

test('one complete event, and a partial one kept for the next read', () => {
  const [events, rest] = parseEvents('event: review\ndata: {"id":"rv-1"}\n\nevent: rev');
  assert.deepEqual(events, [{ type: 'review', data: '{"id":"rv-1"}', id: null }]);
  assert.equal(rest, 'event: rev');
  const [more, left] = parseEvents(`${rest}iew\ndata: 2\n\n`);
  assert.deepEqual(more, [{ type: 'review', data: '2', id: null }]);
  assert.equal(left, '');
});

test('comments are pings, not events; CRLF and CR end lines', () => {
  const [events] = parseEvents(': ping\r\n\r\nevent: review\rdata: a\r\rdata:b\r\n\r\n');
  assert.deepEqual(events, [
    { type: 'review', data: 'a', id: null },
    { type: 'message', data: 'b', id: null },
  ]);
});

test('data lines join with newlines; id is kept; unknown fields are ignored', () => {
  const [events] = parseEvents('id: 7\nretry: 10\ndata: one\ndata:  two\nfoo: bar\n\n');
  assert.deepEqual(events, [{ type: 'message', data: 'one\n two', id: '7' }]);
});

test('an event without data is not dispatched', () => {
  const [events, rest] = parseEvents('event: review\n\n');
  assert.deepEqual(events, []);
  assert.equal(rest, '');
});
