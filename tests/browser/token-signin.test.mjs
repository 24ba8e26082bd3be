// The console on a gateway without an OIDC provider (the `warden up` quickstart): the
// sign-in page offers pasting a token, refuses a bad one with a clear message, and signs
// in with a built-in token. Run by crates/warden/tests/console.rs; prints `OK …` lines
// and `OK all`, exits non-zero on failure.
//
// Environment: WARDEN_URL, WARDEN_OUT, WARDEN_PASTE_TOKEN, WARDEN_PASTE_SUBJECT,
// WARDEN_CHROMIUM (default /usr/bin/chromium).

import * as fs from 'node:fs';
import * as path from 'node:path';

import { chromium } from 'playwright-core';

import { loopbackContext, watch } from './harness.mjs';

const env = process.env;
for (const k of ['WARDEN_URL', 'WARDEN_OUT', 'WARDEN_PASTE_TOKEN', 'WARDEN_PASTE_SUBJECT']) {
  if (!env[k]) {
    console.log(`FAIL setup: ${k} is not set`);
    process.exit(2);
  }
}
const BASE = env.WARDEN_URL.replace(/\/+$/, '');
const OUT = env.WARDEN_OUT;
fs.mkdirSync(OUT, { recursive: true });
const origin = new URL(BASE).origin;

const browser = await chromium.launch({ executablePath: env.WARDEN_CHROMIUM ?? '/usr/bin/chromium', headless: true });
const problems = [];
const offLoopback = [];
const context = await loopbackContext(browser, origin, offLoopback);
const page = watch(await context.newPage(), origin, problems, 'token');
let ok = true;

try {
  await page.goto(`${BASE}/connections`);
  await page.getByRole('heading', { level: 1, name: 'Sign in to Warden' }).waitFor();
  await page.getByRole('heading', { name: 'Sign in with a token' }).waitFor();
  if (await page.getByRole('button', { name: 'Sign out' }).isVisible()) throw new Error('Sign out shown while signed out');
  if (await page.getByRole('button', { name: 'Sign in with your identity provider' }).count()) {
    throw new Error('an OIDC sign-in is offered without a provider');
  }
  await page.screenshot({ path: path.join(OUT, 'quickstart-sign-in.png'), fullPage: true });
  console.log('OK token form offered');

  // A token the gateway refuses: a clear message, and still on the sign-in page. The
  // browser logs the 401 itself; that one expected line is not a console error of ours.
  await page.getByLabel('Token or API key').fill('not-a-real-token');
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.getByRole('alert').getByText('The gateway did not accept that token.').waitFor();
  const expected = (p) => /status of 401/.test(p) && p.includes('/api/v1/me');
  const unexpected = problems.filter((p) => !expected(p));
  problems.length = 0;
  problems.push(...unexpected);
  if (await page.evaluate(() => sessionStorage.getItem('warden.token')) !== null) throw new Error('a refused token was kept');
  console.log('OK bad token refused');

  await page.getByLabel('Token or API key').fill(env.WARDEN_PASTE_TOKEN);
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.getByRole('heading', { level: 1, name: 'Connections' }).waitFor();
  const who = await page.locator('#who').textContent();
  if (!who.startsWith(env.WARDEN_PASTE_SUBJECT)) throw new Error(`header shows ${JSON.stringify(who)}`);
  await page.locator('#connections tbody tr').first().waitFor();
  await page.screenshot({ path: path.join(OUT, 'quickstart-connections.png'), fullPage: true });
  console.log('OK signed in with a token');

  // The address `warden up` prints: the token in the fragment signs a fresh tab in, and
  // leaves neither the address bar nor the history.
  const fresh = watch(await (await loopbackContext(browser, origin, offLoopback)).newPage(), origin, problems, 'fragment');
  await fresh.goto(`${BASE}/#token=${encodeURIComponent(env.WARDEN_PASTE_TOKEN)}`);
  await fresh.getByRole('heading', { level: 1, name: 'Reviews' }).waitFor();
  const shown = await fresh.locator('#who').textContent();
  if (!shown.startsWith(env.WARDEN_PASTE_SUBJECT)) throw new Error(`fragment sign-in shows ${JSON.stringify(shown)}`);
  if (fresh.url().includes('token=')) throw new Error(`the token stayed in the address bar: ${fresh.url()}`);
  console.log('OK signed in from the address warden up prints');
} catch (e) {
  ok = false;
  console.log(`FAIL ${e.stack ?? e}`);
  await page.screenshot({ path: path.join(OUT, 'quickstart-failed.png'), fullPage: true }).catch(() => {});
}
if (ok && problems.length) {
  ok = false;
  console.log(`FAIL no-console-errors:\n${problems.join('\n')}`);
}
if (ok && offLoopback.length) {
  ok = false;
  console.log(`FAIL no-network:\n${offLoopback.join('\n')}`);
}
await browser.close();
if (!ok) process.exit(1);
console.log('OK no console errors');
console.log('OK all');
