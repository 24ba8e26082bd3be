// The console's shell: boot (auth config, sign-in state), the navigation, and a small
// history-API router that renders one view at a time into <main>.

import { api, ApiError, setUnauthorizedHandler } from './api.js';
import * as auth from './auth.js';
import { el, replace, focus, errorBox } from './dom.js';
import * as signin from './views/signin.js';
import * as reviews from './views/reviews.js';
import * as access from './views/access.js';
import * as sessions from './views/sessions.js';
import * as replay from './views/replay.js';
import * as audit from './views/audit.js';
import * as connections from './views/connections.js';

const NAV = [
  { path: '/reviews', label: 'Reviews', view: reviews },
  { path: '/access', label: 'Access requests', view: access },
  { path: '/sessions', label: 'Sessions', view: sessions, needs: ['admin', 'auditor'] },
  { path: '/audit', label: 'Audit', view: audit, needs: ['admin', 'auditor'] },
  { path: '/connections', label: 'Connections', view: connections },
];

const state = {
  config: null,
  me: null,
  cleanup: null,
  rendering: 0,
  /** The path and query last rendered. */
  path: null,
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signOut = document.getElementById('sign-out');
const live = document.getElementById('announce');

/** Says `text` to screen readers (the polite live region) and shows it briefly. */
export function announce(text) {
  live.textContent = '';
  // A new text node after a tick makes screen readers repeat identical messages too.
  setTimeout(() => { live.textContent = text; }, 50);
}

function roles() {
  return new Set(state.me?.roles ?? []);
}

/** True when the signed-in caller has one of `needed` (or the API did not say). */
export function allowed(needed) {
  if (!needed || !state.me || !Array.isArray(state.me.roles)) return true;
  const mine = roles();
  return mine.has('admin') || needed.some((r) => mine.has(r));
}

function routeFor(path) {
  if (path === auth.CALLBACK_PATH) return { view: null, callback: true };
  const m = /^\/sessions\/([^/]+)$/.exec(path);
  if (m) return { view: replay, params: { id: decodeURIComponent(m[1]) }, section: '/sessions' };
  const item = NAV.find((n) => n.path === path);
  if (item) return { view: item.view, section: item.path, needs: item.needs };
  return null;
}

/** Goes to `path` (same origin) and renders it. */
export function navigate(path, { replace: replaceEntry = false } = {}) {
  if (replaceEntry) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function renderNav(section) {
  const signedIn = Boolean(auth.token());
  nav.hidden = !signedIn;
  signOut.hidden = !signedIn;
  if (!signedIn) {
    who.textContent = '';
    return;
  }
  replace(nav.querySelector('ul'), NAV.filter((n) => allowed(n.needs)).map((n) => el('li', {},
    el('a', { href: n.path, 'aria-current': n.path === section ? 'page' : null, text: n.label }))));
  if (state.me) {
    const r = Array.isArray(state.me.roles) && state.me.roles.length ? ` (${state.me.roles.join(', ')})` : '';
    who.textContent = `${state.me.subject ?? 'signed in'}${r}`;
  } else {
    who.textContent = 'Signed in';
  }
}

async function loadMe() {
  try {
    state.me = await api('/api/v1/me', { quiet401: true });
  } catch (e) {
    state.me = null;
    if (e instanceof ApiError && e.status === 401) {
      auth.clear();
      return false;
    }
    // An older gateway without /me: carry on; the API still enforces every permission.
  }
  return true;
}

async function render() {
  const ticket = ++state.rendering;
  if (state.cleanup) {
    try { state.cleanup(); } catch { /* a view's cleanup must not stop navigation */ }
    state.cleanup = null;
  }
  // `warden up` prints the console's address with a token in the fragment (never sent to
  // a server): keep it for this tab and take it out of the address bar and history.
  const fragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fragment) {
    history.replaceState(null, '', location.pathname + location.search);
    try {
      auth.usePasted(fragment);
      state.me = null;
    } catch (e) {
      return showSignIn(e.message);
    }
  }
  const path = location.pathname;
  state.path = path + location.search;
  if (path === '/' || path === '/index.html') {
    history.replaceState(null, '', '/reviews');
    return render();
  }
  const route = routeFor(path);
  if (route?.callback) {
    replace(main, el('h1', { tabindex: '-1', text: 'Signing in…' }));
    try {
      const back = await auth.completeSignIn(location.search);
      await loadMe();
      history.replaceState(null, '', back === auth.CALLBACK_PATH ? '/reviews' : back);
    } catch (e) {
      history.replaceState(null, '', '/reviews');
      return showSignIn(e.message);
    }
    return render();
  }
  if (!auth.token()) {
    return showSignIn(auth.expired() ? 'Your session expired; sign in again.' : null);
  }
  if (!state.me && !(await loadMe())) return showSignIn('The gateway did not accept the token; sign in again.');
  if (ticket !== state.rendering) return undefined;
  renderNav(route?.section);
  if (!route) {
    replace(main, el('h1', { tabindex: '-1', text: 'Not found' }),
      el('p', {}, 'No such page. ', el('a', { href: '/reviews', text: 'Go to the reviews inbox' }), '.'));
    focus(main.querySelector('h1'));
    return undefined;
  }
  if (!allowed(route.needs)) {
    replace(main, el('h1', { tabindex: '-1', text: 'Not allowed' }),
      errorBox('This page needs the auditor or admin role.'));
    focus(main.querySelector('h1'));
    return undefined;
  }
  main.replaceChildren();
  main.setAttribute('aria-busy', 'true');
  try {
    const cleanup = await route.view.render({
      main, me: state.me, config: state.config, params: route.params ?? {},
      navigate, announce, allowed,
    });
    if (ticket === state.rendering) state.cleanup = typeof cleanup === 'function' ? cleanup : null;
    else if (typeof cleanup === 'function') cleanup();
  } catch (e) {
    if (ticket === state.rendering) {
      main.append(errorBox(e instanceof ApiError ? `${e.message} (${e.code ?? e.status})` : String(e.message ?? e)));
    }
  } finally {
    main.removeAttribute('aria-busy');
  }
  if (ticket === state.rendering) {
    document.title = `${main.querySelector('h1')?.textContent ?? 'Warden'} · Warden console`;
    focus(main.querySelector('h1'));
  }
  return undefined;
}

function showSignIn(message) {
  renderNav(null);
  document.title = 'Sign in · Warden console';
  return signin.render({
    main,
    config: state.config,
    message,
    returnTo: location.pathname === auth.CALLBACK_PATH ? '/reviews' : location.pathname + location.search,
    done: async () => {
      state.me = null;
      if (!(await loadMe())) {
        auth.clear();
        return 'The gateway did not accept that token.';
      }
      render();
      return null;
    },
  });
}

async function boot() {
  setUnauthorizedHandler(() => {
    auth.clear();
    state.me = null;
    render();
  });
  try {
    const res = await fetch('/api/v1/auth/config', { headers: { accept: 'application/json' }, credentials: 'omit' });
    state.config = res.ok ? await res.json() : null;
  } catch {
    state.config = null;
  }
  // In-page links go through the router; modified clicks (new tab) stay with the browser.
  document.addEventListener('click', (ev) => {
    const a = ev.target instanceof Element ? ev.target.closest('a[href]') : null;
    if (!a || a.target || a.hasAttribute('download') || ev.defaultPrevented) return;
    // In-page fragments (the skip link) are the browser's to handle.
    if (a.getAttribute('href').startsWith('#')) return;
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    ev.preventDefault();
    navigate(url.pathname + url.search);
  });
  // A fragment change (the skip link) fires popstate too; only a new path re-renders.
  window.addEventListener('popstate', () => {
    if (location.pathname + location.search !== state.path) render();
  });
  signOut.addEventListener('click', () => {
    auth.clear();
    state.me = null;
    announce('Signed out.');
    history.pushState(null, '', '/reviews');
    render();
  });
  render();
}

boot();
