// The sign-in page: "Sign in with <provider>" (authorization code + PKCE) when the gateway
// names an OIDC provider and a console client; pasting a token or API key otherwise (and
// always, folded away, as a fallback).

import * as auth from '../auth.js';
import { el, replace, focus, errorBox } from '../dom.js';

/** Renders the sign-in page into `main`. `done()` resolves to an error message or null. */
export function render({ main, config, message, returnTo, done }) {
  const oidc = config?.oidc && config.oidc.console_client_id ? config.oidc : null;
  const status = el('div', { class: 'status', 'aria-live': 'polite' });
  if (message) status.append(errorBox(message));

  const oidcPart = oidc ? el('section', { class: 'panel', 'aria-labelledby': 'oidc-h' },
    el('h2', { id: 'oidc-h', text: 'Single sign-on' }),
    el('p', {}, 'Sign in with your organisation\'s identity provider at ', el('code', { text: oidc.issuer }), '.'),
    el('button', {
      type: 'button',
      id: 'oidc-sign-in',
      text: 'Sign in with your identity provider',
      on: {
        click: async (ev) => {
          ev.currentTarget.disabled = true;
          status.replaceChildren(el('p', { text: 'Redirecting to the identity provider…' }));
          try {
            await auth.beginSignIn(oidc, returnTo);
          } catch (e) {
            ev.currentTarget.disabled = false;
            status.replaceChildren(errorBox(e.message));
          }
        },
      },
    })) : null;

  const input = el('textarea', {
    id: 'token-input', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-hint',
  });
  const form = el('form', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        status.replaceChildren();
        try {
          auth.usePasted(input.value);
        } catch (e) {
          status.append(errorBox(e.message));
          focus(input);
          return;
        }
        input.value = '';
        const problem = await done();
        if (problem) status.append(errorBox(problem));
      },
    },
  },
  el('div', { class: 'field' },
    el('label', { for: 'token-input', text: 'Token or API key' }),
    input,
    el('p', { id: 'token-hint', class: 'hint' },
      'A token from ', el('code', { text: 'warden tokens issue' }), ' or the line ',
      el('code', { text: 'warden up' }), ' printed. It stays in this tab only.')),
  el('button', { type: 'submit', text: 'Use this token' }));

  const pastePart = oidc
    ? el('details', {}, el('summary', { text: 'Use a token or API key instead' }), form)
    : el('section', { class: 'panel', 'aria-labelledby': 'paste-h' },
      el('h2', { id: 'paste-h', text: 'Sign in with a token' }),
      el('p', { class: 'muted', text: 'This gateway has no OpenID Connect provider configured for the console.' }),
      form);

  replace(main, el('div', { class: 'signin' },
    el('h1', { tabindex: '-1', text: 'Sign in to Warden' }),
    status, oidcPart, pastePart));
  focus(main.querySelector('h1'));
}
