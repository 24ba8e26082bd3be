// Test-only OpenID Provider for Warden's integration tests. See README.md in this folder.
//
// Never expose this outside loopback: it has unauthenticated admin endpoints that mint
// arbitrary tokens.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    keys: { type: 'string' },
  },
  strict: true,
});

const env = process.env;
const PORT = Number.parseInt(args.port ?? env.WARDEN_OIDC_PORT ?? env.PORT ?? '0', 10);
const KEYS_FILE = args.keys ?? env.WARDEN_OIDC_KEYS;
const AUDIENCE = env.WARDEN_OIDC_AUDIENCE ?? 'urn:warden';
const CLIENT_ID = env.WARDEN_OIDC_CLIENT_ID ?? 'warden-test';
const CLIENT_SECRET = env.WARDEN_OIDC_CLIENT_SECRET ?? 'warden-test-secret';
const CLI_CLIENT_ID = env.WARDEN_OIDC_CLI_CLIENT_ID ?? 'warden-cli';
// The web console: a public client using the authorization code flow with PKCE. As a
// 'native' client its loopback redirect URIs match on any port (RFC 8252 section 7.3), so
// a gateway on a random test port needs no registration.
const CONSOLE_CLIENT_ID = env.WARDEN_OIDC_CONSOLE_CLIENT_ID ?? 'warden-console';
const CONSOLE_REDIRECTS = (env.WARDEN_OIDC_CONSOLE_REDIRECTS
  ?? 'http://127.0.0.1/console/callback,http://localhost/console/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);
const TOKEN_TTL = Number.parseInt(env.WARDEN_OIDC_TOKEN_TTL ?? '600', 10);
// Groups per end-user account (device flow); `POST /__admin/users` changes it at runtime.
const userGroups = new Map(Object.entries(JSON.parse(env.WARDEN_OIDC_USERS ?? '{}')));

if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  throw new Error(`invalid port: ${args.port ?? env.WARDEN_OIDC_PORT ?? env.PORT}`);
}

// ---------------------------------------------------------------------------------------
// Keys. `published` is the JWKS, newest first: oidc-provider signs with the first key that
// matches the algorithm, so rotation is "prepend a key and rebuild the provider".

function newRsaJwk() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

function loadKeys() {
  if (KEYS_FILE && fs.existsSync(KEYS_FILE)) {
    const { keys } = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8'));
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new Error(`${KEYS_FILE}: expected a private JWKS with at least one key`);
    }
    return keys.map((k) => ({ alg: 'RS256', use: 'sig', ...k }));
  }
  return [newRsaJwk()];
}

function saveKeys() {
  if (!KEYS_FILE) return;
  fs.mkdirSync(path.dirname(path.resolve(KEYS_FILE)), { recursive: true });
  const tmp = `${KEYS_FILE}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ keys: published }, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, KEYS_FILE);
}

let published = loadKeys();
saveKeys();
// A key that is never published, for tokens whose kid the verifier cannot find.
const unpublished = newRsaJwk();
unpublished.kid = `unpublished-${unpublished.kid}`;

// ---------------------------------------------------------------------------------------
// Groups. Client-credentials callers ask for groups with scope values `groups:NAME`, and
// may set the subject with `sub:NAME`; device-flow users get `userGroups[account]` plus any
// `groups:NAME` scope of their device authorization request.

function scopeValues(scope, prefix) {
  if (typeof scope !== 'string') return [];
  return scope
    .split(' ')
    .filter((s) => s.startsWith(prefix) && s.length > prefix.length)
    .map((s) => s.slice(prefix.length));
}

function requestedScope(ctx) {
  return [ctx?.oidc?.params?.scope, ctx?.oidc?.entities?.DeviceCode?.params?.scope]
    .filter((s) => typeof s === 'string')
    .join(' ');
}

async function extraTokenClaims(ctx, token) {
  const groups = new Set(scopeValues(requestedScope(ctx), 'groups:'));
  if (token.accountId) {
    for (const g of userGroups.get(token.accountId) ?? []) groups.add(g);
  }
  return { groups: [...groups] };
}

async function customizeJwt(ctx, token, jwt) {
  // Only for client credentials: end-user tokens keep the account as subject.
  if (token.kind !== 'ClientCredentials') return;
  const [sub] = scopeValues(ctx?.oidc?.params?.scope, 'sub:');
  if (sub) jwt.payload.sub = sub;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

// CORS for browser calls to the token endpoint. The console's page is served by the
// gateway on a port the test picks, so its origin is any loopback http origin whose
// host matches a registered redirect URI's host (the port is free, as for the redirect).
// Other clients keep oidc-provider's default rule (public clients: redirect URI origins).
function clientBasedCORS(ctx, origin, client) {
  if (origin === 'null') return false;
  const o = URL.parse(origin);
  if (client.clientId === CONSOLE_CLIENT_ID) {
    return Boolean(o && o.protocol === 'http:' && LOOPBACK_HOSTS.has(o.hostname)
      && client.redirectUris.some((uri) => URL.parse(uri)?.hostname === o.hostname));
  }
  if (ctx.oidc.route === 'userinfo' || client.clientAuthMethod === 'none') {
    return client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin);
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Provider. Rebuilt on rotation; its state lives in the module-level memory adapter, so a
// device flow in progress survives a rotation.

let issuer;
let handler;

function buildProvider() {
  const p = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: CLI_CLIENT_ID,
        client_name: 'Warden CLI',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: CONSOLE_CLIENT_ID,
        client_name: 'Warden console',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: CONSOLE_REDIRECTS,
      },
    ],
    clientBasedCORS,
    jwks: { keys: published },
    cookies: { keys: ['warden-test-only-cookie-key'] },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name', 'groups'], email: ['email'] },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({
        sub: id,
        name: id,
        email: `${id}@example.test`,
        groups: userGroups.get(id) ?? [],
      }),
    }),
    extraTokenClaims,
    formats: { customizers: { jwt: customizeJwt } },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (resourceIndicator !== AUDIENCE) throw new errors.InvalidTarget();
          return {
            scope: 'openid offline_access profile email',
            audience: AUDIENCE,
            accessTokenTTL: TOKEN_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: TOKEN_TTL,
      ClientCredentials: TOKEN_TTL,
      DeviceCode: 600,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 86400,
      Session: 86400,
    },
  });
  // Test tokens carry sensitive material; log errors, not request bodies.
  p.on('server_error', (_ctx, err) => console.error('oidc server_error:', err));
  return p;
}

function rebuild() {
  handler = buildProvider().callback();
}

// ---------------------------------------------------------------------------------------
// Admin endpoints.

const b64url = (data) => Buffer.from(data).toString('base64url');

function privateKeyOf(jwk) {
  return crypto.createPrivateKey({ key: jwk, format: 'jwk' });
}

function publicJwk(jwk) {
  const { kty, n, e, kid, alg, use } = jwk;
  return { kty, n, e, kid, alg, use };
}

// Builds a JWS by hand so that any header is accepted verbatim (a library would reject the
// odd ones that tests need: `alg: none`, an unknown `crit`, HMAC with a public key, …).
function signJws(jwk, body) {
  if (body.header !== undefined && (body.header === null || typeof body.header !== 'object' || Array.isArray(body.header))) {
    throw new HttpError(400, 'header must be a JSON object');
  }
  // A null in the override removes that header (e.g. `{"kid": null}` for a token without kid).
  const header = Object.fromEntries(
    Object.entries({ alg: 'RS256', typ: 'JWT', kid: jwk.kid, ...(body.header ?? {}) })
      .filter(([, v]) => v !== null),
  );
  const claims = body.claims ?? {};
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const { alg } = header;
  let sig;
  if (alg === 'none') {
    sig = Buffer.alloc(0);
  } else if (/^HS(256|384|512)$/.test(alg)) {
    // Default secret: the public key's PEM, the classic algorithm-confusion attack.
    const secret = body.hmac_secret
      ?? crypto.createPublicKey({ key: publicJwk(jwk), format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    sig = crypto.createHmac(`sha${alg.slice(2)}`, secret).update(input).digest();
  } else if (/^RS(256|384|512)$/.test(alg)) {
    sig = crypto.sign(`sha${alg.slice(2)}`, Buffer.from(input), privateKeyOf(jwk));
  } else if (/^PS(256|384|512)$/.test(alg)) {
    sig = crypto.sign(`sha${alg.slice(2)}`, Buffer.from(input), {
      key: privateKeyOf(jwk),
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: Number(alg.slice(2)) / 8,
    });
  } else {
    throw new HttpError(400, `unsupported alg for signing: ${alg}`);
  }
  return `${input}.${b64url(sig)}`;
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object');
  }
  return body;
}

function keysInfo() {
  return {
    signing_kid: published[0].kid,
    published_kids: published.map((k) => k.kid),
    unpublished_kid: unpublished.kid,
  };
}

// Drives the real device-flow pages (user code, dev login form, consent) as a browser would.
async function approveDevice({ user_code: userCode, login, deny }) {
  if (typeof userCode !== 'string' || typeof login !== 'string') {
    throw new HttpError(400, 'user_code and login (strings) are required');
  }
  const jar = new Map();
  const take = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const request = async (url, form) => {
    const res = await fetch(new URL(url, issuer), {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: cookie(),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    take(res);
    const text = await res.text();
    if (env.WARDEN_OIDC_DEBUG) {
      console.error('device flow:', form ? 'POST' : 'GET', url, '->', res.status, res.headers.get('location') ?? '');
    }
    return { res, text };
  };
  const formOf = (html) => {
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const fields = {};
    for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) {
      fields[m[1]] = m[2];
    }
    return { action: action?.replaceAll('&amp;', '&'), fields };
  };

  // 1. The verification page gives an xsrf token; submitting the code starts an interaction.
  let page = await request('/device');
  let { action, fields } = formOf(page.text);
  page = await request(action ?? '/device', { ...fields, user_code: userCode });
  // 2. Follow redirects through login and consent prompts until the flow ends.
  for (let step = 0; step < 10; step += 1) {
    const location = page.res.headers.get('location');
    if (location) {
      page = await request(location);
      continue;
    }
    ({ action, fields } = formOf(page.text));
    if (fields.prompt === 'login') {
      page = await request(action, { ...fields, login, password: 'any' });
    } else if (fields.prompt === 'consent') {
      page = await request(action, fields);
    } else if (page.text.includes('op.deviceConfirmForm')) {
      // "Continue" posts the hidden fields; "Abort" adds abort=yes.
      page = await request(action, deny ? { ...fields, abort: 'yes' } : fields);
    } else {
      break;
    }
  }
  const done = deny ? /request was interrupted/i : /<title>Sign-in Success<\/title>/;
  if (page.res.status !== 200 || !done.test(page.text)) {
    const why = /<p class="red">(.*?)<\/p>/s.exec(page.text)?.[1]
      ?? /<title>(.*?)<\/title>/s.exec(page.text)?.[1]
      ?? page.text.slice(0, 200);
    throw new HttpError(502, `device flow did not complete (HTTP ${page.res.status}): ${why}`);
  }
  return { ok: true, denied: Boolean(deny) };
}

async function admin(req, route) {
  if (route === '/keys' && req.method === 'GET') return keysInfo();
  if (req.method !== 'POST') throw new HttpError(405, 'use POST');
  const body = await readJson(req);
  switch (route) {
    case '/rotate': {
      // Publish [new, previous current]; older keys are dropped.
      published = [newRsaJwk(), published[0]];
      saveKeys();
      rebuild();
      return keysInfo();
    }
    case '/sign':
      return { token: signJws(published[0], body), kid: body.header?.kid ?? published[0].kid };
    case '/sign-unpublished':
    case '/sign-with-new-key-unpublished':
      return { token: signJws(unpublished, body), kid: body.header?.kid ?? unpublished.kid };
    case '/users': {
      for (const [user, groups] of Object.entries(body)) {
        if (!Array.isArray(groups)) throw new HttpError(400, `groups of ${user} must be an array`);
        userGroups.set(user, groups.map(String));
      }
      return { ok: true };
    }
    case '/device/approve':
      return approveDevice(body);
    case '/device/deny':
      return approveDevice({ ...body, deny: true });
    default:
      throw new HttpError(404, `no admin route ${route}`);
  }
}

// ---------------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/__admin/')) {
    admin(req, url.slice('/__admin'.length).split('?')[0])
      .then((out) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out));
      })
      .catch((err) => {
        res.writeHead(err.status ?? 500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err.message }));
      });
    return;
  }
  handler(req, res);
});

server.listen(PORT, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  rebuild();
  process.stdout.write(`READY ${issuer}\n`);
});

// The harness kills us with SIGKILL on drop; a polite stop is also fine.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

// A test binary that dies without dropping us (SIGKILL, abort) must not leave us running:
// exit when we are re-parented.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) process.exit(0);
}, 1000).unref();
