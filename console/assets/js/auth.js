// Sign-in: OpenID Connect authorization code flow with PKCE (a public client), or a
// pasted token when no OIDC provider is configured (the `warden up` quickstart).
// Tokens live in sessionStorage: they last as long as the tab and never reach a cookie.

const TOKEN_KEY = 'warden.token';
const FLOW_KEY = 'warden.signin';
/** The console's redirect URI path; the gateway serves the console there too. */
export const CALLBACK_PATH = '/console/callback';

/** The stored credential `{access_token, expires_at, kind, id_token?}`, or null. */
export function stored() {
  try {
    const t = JSON.parse(sessionStorage.getItem(TOKEN_KEY) ?? 'null');
    if (!t || typeof t.access_token !== 'string' || t.access_token === '') return null;
    return t;
  } catch {
    return null;
  }
}

/** The bearer token to send, or null when signed out or expired. */
export function token() {
  const t = stored();
  if (!t) return null;
  if (typeof t.expires_at === 'number' && Date.now() >= t.expires_at) return null;
  return t.access_token;
}

/** True when a token was stored but has expired. */
export function expired() {
  const t = stored();
  return Boolean(t && typeof t.expires_at === 'number' && Date.now() >= t.expires_at);
}

/** Forgets the token (sign out). */
export function clear() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function save(t) {
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(t));
}

/** Stores a pasted token or API key. Its `exp` is read when it is a JWT. */
export function usePasted(raw) {
  const value = raw.trim();
  if (value === '' || /\s/.test(value)) throw new Error('Paste the token alone: no spaces or line breaks.');
  const exp = jwtClaims(value)?.exp;
  save({ access_token: value, kind: 'pasted', expires_at: Number.isFinite(exp) ? exp * 1000 : null });
}

/** The payload of a compact JWT, unverified (only for display and expiry), or null. */
export function jwtClaims(jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const text = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(text);
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function discover(issuer, discoveryUrl) {
  const base = issuer.replace(/\/+$/, '');
  const res = await fetch(discoveryUrl || `${base}/.well-known/openid-configuration`, {
    headers: { accept: 'application/json' },
    credentials: 'omit',
  });
  if (!res.ok) throw new Error(`The identity provider's discovery document answered HTTP ${res.status}.`);
  const doc = await res.json();
  if (doc.issuer !== issuer && doc.issuer !== base) {
    throw new Error(`The discovery document names issuer ${doc.issuer}, not ${issuer}.`);
  }
  for (const k of ['authorization_endpoint', 'token_endpoint']) {
    if (typeof doc[k] !== 'string') throw new Error(`The discovery document has no ${k}.`);
  }
  return doc;
}

/**
 * Starts the authorization code flow: discovery, a PKCE verifier and state kept in
 * sessionStorage, then a redirect to the provider. `oidc` is `auth/config`'s `oidc`.
 */
export async function beginSignIn(oidc, returnTo) {
  if (!window.isSecureContext || !crypto.subtle) {
    throw new Error('Sign-in needs a secure context: open the console over https or on a loopback address.');
  }
  const doc = await discover(oidc.issuer, oidc.discovery_url);
  const verifier = random(48);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const flow = {
    verifier,
    state: random(),
    nonce: random(),
    return_to: returnTo,
    client_id: oidc.console_client_id,
    token_endpoint: doc.token_endpoint,
    redirect_uri: `${location.origin}${CALLBACK_PATH}`,
    resource: oidc.audience || null,
  };
  sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
  // No offline_access: the console keeps no refresh token; signing in again is the renewal.
  const asked = Array.isArray(oidc.scopes) ? oidc.scopes.filter((s) => s !== 'offline_access') : [];
  const scopes = asked.includes('openid') ? asked : ['openid', ...asked];
  const url = new URL(doc.authorization_endpoint);
  const q = url.searchParams;
  q.set('response_type', 'code');
  q.set('client_id', flow.client_id);
  q.set('redirect_uri', flow.redirect_uri);
  q.set('scope', scopes.join(' '));
  q.set('state', flow.state);
  q.set('nonce', flow.nonce);
  q.set('code_challenge', challenge);
  q.set('code_challenge_method', 'S256');
  if (flow.resource) q.set('resource', flow.resource);
  location.assign(url.toString());
}

/**
 * Completes the flow on the callback URL: checks `state`, redeems the code with the PKCE
 * verifier, checks the ID token's nonce, stores the access token. Returns the path to go
 * back to.
 */
export async function completeSignIn(search) {
  const params = new URLSearchParams(search);
  const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) ?? 'null');
  sessionStorage.removeItem(FLOW_KEY);
  if (params.get('error')) {
    const why = params.get('error_description') || params.get('error');
    throw new Error(`The identity provider refused the sign-in: ${why}`);
  }
  if (!flow) throw new Error('No sign-in was in progress in this tab. Start again.');
  if (!params.get('state') || params.get('state') !== flow.state) {
    throw new Error('The sign-in answer does not match the request (state). Start again.');
  }
  const code = params.get('code');
  if (!code) throw new Error('The identity provider sent no authorization code.');
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: flow.redirect_uri,
    client_id: flow.client_id,
    code_verifier: flow.verifier,
  });
  if (flow.resource) form.set('resource', flow.resource);
  const res = await fetch(flow.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
    credentials: 'omit',
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || typeof body.access_token !== 'string') {
    const why = body.error_description || body.error || `HTTP ${res.status}`;
    throw new Error(`The token request failed: ${why}`);
  }
  if (body.id_token) {
    const claims = jwtClaims(body.id_token);
    if (!claims || claims.nonce !== flow.nonce) {
      throw new Error('The ID token does not carry this sign-in\'s nonce. Start again.');
    }
  }
  const ttl = Number(body.expires_in);
  save({
    access_token: body.access_token,
    kind: 'oidc',
    expires_at: Number.isFinite(ttl) && ttl > 0 ? Date.now() + ttl * 1000 : null,
  });
  const back = flow.return_to;
  // Only a path on this origin: never `//elsewhere` or a full URL.
  return typeof back === 'string' && /^\/(?![/\\])/.test(back) ? back : '/';
}
