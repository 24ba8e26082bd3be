// Calls to the gateway's REST API with the signed-in bearer token. Failures become an
// `ApiError` carrying the RFC 9457 problem the gateway sent.

import { token } from './auth.js';

/** An API call that did not succeed. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem?.detail || problem?.title || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.code = problem?.code ?? null;
    this.problem = problem ?? null;
  }
}

let onUnauthorized = () => {};

/** Sets what happens when the gateway answers 401 (the token expired or was revoked). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Reports a 401 seen outside `api()` (the event stream). */
export function unauthorized() {
  onUnauthorized();
}

/** The Authorization header for the current token (empty when signed out). */
export function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/**
 * Calls `path` (e.g. `/api/v1/sessions`). `body` is sent as JSON. Resolves to the parsed
 * JSON (or text) answer, or the Response itself with `raw`; rejects with `ApiError`.
 */
export async function api(path, { method = 'GET', body, signal, raw = false, quiet401 = false } = {}) {
  const headers = { accept: 'application/json', ...authHeaders() };
  const init = { method, headers, signal, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  // `quiet401`: the caller handles a refused token itself (checking a pasted one).
  if (res.status === 401 && !quiet401) onUnauthorized();
  if (!res.ok) {
    let problem = null;
    try {
      problem = await res.json();
    } catch {
      problem = null;
    }
    throw new ApiError(res.status, problem);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') ?? '';
  return type.includes('json') ? res.json() : res.text();
}

/** `path` with a query string built from `params` (undefined and empty values left out). */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** Encodes one path segment (ids come from the server, but may be odd). */
export function seg(value) {
  return encodeURIComponent(String(value));
}
