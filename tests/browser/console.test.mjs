// Browser test of Warden's web console in real headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core). crates/warden/tests/console.rs starts the
// OIDC provider, PostgreSQL and the gateway, then runs this script and checks its exit
// status and its `OK …` lines. Every step prints `STEP name`, then `OK name` or
// `FAIL name: why`; the last line is `OK all` on success.
//
// The script fails on any console error or uncaught exception in a console page (the
// identity provider's own pages are not ours and are ignored), and on any request a
// console page makes off loopback (everything must come from the binary).
//
// Environment (all required unless noted):
//   WARDEN_URL            the gateway's HTTP base, e.g. http://127.0.0.1:PORT
//   WARDEN_OIDC_ISSUER    the OIDC provider's issuer URL
//   WARDEN_OUT            folder for screenshots (created)
//   WARDEN_LOGIN          the end user to sign in as (default alice)
//   WARDEN_DROP_DSN, WARDEN_DROP_TABLE, WARDEN_DROP_SUBJECT
//                         libpq DSN of the agent whose DROP TABLE is held, the table, the
//                         agent's subject (to find its session for the replay)
//   WARDEN_XSS_DSN        DSN whose UPDATE of xss_t is held (text and parameter carry HTML)
//   WARDEN_KILL_DSN, WARDEN_KILL_SUBJECT   the session to kill, and its subject
//   WARDEN_ACCESS_REQUESTER                subject of a pending access request to approve
//   WARDEN_PASTE_TOKEN, WARDEN_PASTE_SUBJECT  a token to sign in with by pasting
//   WARDEN_CHROMIUM       browser binary (default /usr/bin/chromium)

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { loopbackContext, watch as watchPage } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;

function need(name) {
  const v = env[name];
  if (!v) {
    console.log(`FAIL setup: environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const BASE = need('WARDEN_URL').replace(/\/+$/, '');
const ISSUER = need('WARDEN_OIDC_ISSUER').replace(/\/+$/, '');
const OUT = need('WARDEN_OUT');
const LOGIN = env.WARDEN_LOGIN ?? 'alice';
const DROP_DSN = need('WARDEN_DROP_DSN');
const DROP_TABLE = need('WARDEN_DROP_TABLE');
const DROP_SUBJECT = need('WARDEN_DROP_SUBJECT');
const XSS_DSN = need('WARDEN_XSS_DSN');
const KILL_DSN = need('WARDEN_KILL_DSN');
const KILL_SUBJECT = need('WARDEN_KILL_SUBJECT');
const ACCESS_REQUESTER = need('WARDEN_ACCESS_REQUESTER');
const PASTE_TOKEN = need('WARDEN_PASTE_TOKEN');
const PASTE_SUBJECT = need('WARDEN_PASTE_SUBJECT');
const CHROMIUM = env.WARDEN_CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT = 20_000;

fs.mkdirSync(OUT, { recursive: true });
const consoleOrigin = new URL(BASE).origin;

// ---------------------------------------------------------------------------------------
// PostgreSQL clients (psycopg, through the gateway)

const children = new Set();

function pgClient(mode, dsn, ...args) {
  const child = spawn('python3', [path.join(HERE, 'pg_client.py'), mode, ...args], {
    env: { ...process.env, WARDEN_DSN: dsn },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => {
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, out, err });
    });
  });
  return {
    done,
    output: () => `${out}${err ? `\n[stderr]\n${err}` : ''}`,
    async waitFor(needle, ms = TIMEOUT) {
      const until = Date.now() + ms;
      while (!out.includes(needle)) {
        if (Date.now() > until || child.exitCode !== null) {
          throw new Error(`psycopg client (${mode}) did not print ${JSON.stringify(needle)}:\n${out}\n${err}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async finished(ms = TIMEOUT) {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`psycopg client (${mode}) still running after ${ms} ms:\n${out}\n${err}`)), ms);
      });
      try {
        return await Promise.race([done, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function killChildren() {
  for (const c of children) c.kill('SIGKILL');
}
process.on('exit', killChildren);

// ---------------------------------------------------------------------------------------
// Browser, with the checks every page gets

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
const problems = [];
const offLoopback = [];

const newContext = () => loopbackContext(browser, consoleOrigin, offLoopback);
const watch = (p, label) => watchPage(p, consoleOrigin, problems, label, TIMEOUT);

const context = await newContext();
const page = watch(await context.newPage(), 'main');
/** The page screenshots are taken of. */
let current = page;
let shot = 0;

async function screenshot(name) {
  shot += 1;
  const file = path.join(OUT, `${String(shot).padStart(2, '0')}-${name}.png`);
  await current.screenshot({ path: file, fullPage: true });
  console.log(`SCREENSHOT ${file}`);
}

/** Structure and accessibility checks for the page as it is now. */
async function checkPage(name) {
  const issues = await page.evaluate(() => {
    const out = [];
    if (!document.querySelector('header')) out.push('no header landmark');
    if (!document.querySelector('nav[aria-label]')) out.push('no labelled nav landmark');
    if (!document.querySelector('main')) out.push('no main landmark');
    if (document.querySelectorAll('main h1').length !== 1) out.push(`${document.querySelectorAll('main h1').length} h1 in main`);
    for (const c of document.querySelectorAll('input, select, textarea')) {
      if (c.type === 'hidden' || c.closest('[hidden]')) continue;
      if (!c.labels?.length && !c.getAttribute('aria-label') && !c.getAttribute('aria-labelledby')) {
        out.push(`unlabelled control ${c.outerHTML.slice(0, 100)}`);
      }
    }
    for (const b of document.querySelectorAll('button, a[href]')) {
      if (b.closest('[hidden]') || (b.closest('dialog') && !b.closest('dialog').open)) continue;
      const nameOf = (b.getAttribute('aria-label') || b.textContent || b.getAttribute('title') || '').trim();
      if (!nameOf) out.push(`control without a name ${b.outerHTML.slice(0, 100)}`);
    }
    // Usable on a laptop screen: nothing wider than the window.
    if (document.documentElement.scrollWidth > window.innerWidth + 1) {
      out.push(`page is ${document.documentElement.scrollWidth}px wide in a ${window.innerWidth}px window`);
    }
    return out;
  });
  if (issues.length) throw new Error(`${name}: ${issues.join('; ')}`);
}

async function go(label) {
  await page.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: label, exact: true }).click();
  await page.locator('main h1').first().waitFor();
}

// ---------------------------------------------------------------------------------------
// Steps

let failed = false;

async function step(name, fn) {
  if (failed) return;
  console.log(`STEP ${name}`);
  try {
    await fn();
    if (problems.length) throw new Error(problems.splice(0).join('\n'));
    console.log(`OK ${name}`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
    try {
      await current.screenshot({ path: path.join(OUT, `failed-${name}.png`), fullPage: true });
      console.log(`SCREENSHOT ${path.join(OUT, `failed-${name}.png`)} (at ${current.url()})`);
    } catch { /* the page may be gone */ }
  }
}

await step('sign-in-through-oidc', async () => {
  await page.goto(`${BASE}/`);
  await page.getByRole('heading', { level: 1, name: 'Sign in to Warden' }).waitFor();
  if (await page.getByRole('button', { name: 'Sign out' }).isVisible()) throw new Error('Sign out shown while signed out');
  if (await page.getByRole('navigation', { name: 'Console sections' }).isVisible()) throw new Error('navigation shown while signed out');
  await checkPage('sign-in');
  await screenshot('sign-in');
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  await page.waitForURL((u) => u.href.startsWith(ISSUER));
  // The provider's dev login form, then its consent page, as a person would use them.
  await page.locator('input[name=login]').fill(LOGIN);
  await page.locator('input[name=password]').fill('any password');
  await screenshot('provider-login');
  await page.locator('button[type=submit]').click();
  await page.locator('input[name=prompt][value=consent]').waitFor({ state: 'attached' });
  await screenshot('provider-consent');
  await page.locator('button[type=submit]').click();
  await page.waitForURL(`${BASE}/reviews`);
  await page.getByRole('heading', { level: 1, name: 'Reviews' }).waitFor();
  const who = await page.locator('#who').textContent();
  if (!who.startsWith(LOGIN)) throw new Error(`header shows ${JSON.stringify(who)}, not ${LOGIN}`);
  // The code and state never stay in the address bar or history.
  if (page.url().includes('code=')) throw new Error(`URL keeps the code: ${page.url()}`);
  const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('warden.token') ?? 'null'));
  if (!stored?.access_token || stored.kind !== 'oidc') throw new Error('no OIDC token in sessionStorage');
  if (await page.evaluate(() => document.cookie) !== '') throw new Error('the console set a cookie');
  await page.locator('#stream-state', { hasText: 'live' }).waitFor();
  await checkPage('reviews');
  // Keyboard: the first Tab reaches the skip link, and focus is visible.
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => {
    const a = document.activeElement;
    return { skip: a?.classList.contains('skip'), text: a?.textContent?.trim(), outline: a ? getComputedStyle(a).outlineStyle : '' };
  });
  if (!focused.skip || focused.outline === 'none') {
    throw new Error(`keyboard focus not visible: ${JSON.stringify(focused)}`);
  }
  // The skip link takes keyboard focus to the content, without re-rendering the page.
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.id === 'main');
  if (!page.url().endsWith('/reviews#main')) throw new Error(`skip link went to ${page.url()}`);
  await page.locator('main h1').focus();
  console.log(`INFO signed in as ${who}`);
});

await step('held-drop-appears-live-and-approval-releases-it', async () => {
  await page.evaluate(() => { window.__sameDocument = 'yes'; });
  const client = pgClient('drop', DROP_DSN, DROP_TABLE);
  await client.waitFor('HOLDING');
  const statement = `DROP TABLE ${DROP_TABLE}`;
  const card = page.locator('#inbox article', { hasText: statement });
  await card.waitFor();
  // It arrived over the stream, not by a reload.
  if (await page.evaluate(() => window.__sameDocument) !== 'yes') throw new Error('the page was reloaded');
  const reviewId = await card.getAttribute('data-id');
  const text = await card.locator('pre.sql').textContent();
  if (text !== statement) throw new Error(`statement shown as ${JSON.stringify(text)}`);
  await card.getByText('No parameters.').waitFor();
  await card.getByText(DROP_SUBJECT).first().waitFor();
  await page.locator('#announce', { hasText: 'New review from' }).waitFor();
  await checkPage('inbox with a held statement');
  await screenshot('inbox-held-drop');
  if (client.output().includes('OK dropped')) throw new Error('the DROP ran before approval');
  await card.getByLabel('Reason (optional)').fill('planned cleanup');
  // Keyboard operable: focus the button and press Enter.
  await card.getByRole('button', { name: 'Approve', exact: true }).focus();
  await page.keyboard.press('Enter');
  const res = await client.finished();
  if (res.code !== 0 || !res.out.includes('OK dropped') || !res.out.includes('OK 42')) {
    throw new Error(`the waiting psycopg client did not get its result:\n${client.output()}`);
  }
  const row = page.locator(`#recent tbody tr[data-id="${reviewId}"]`);
  await row.getByText('approved').waitFor();
  await row.getByText('planned cleanup').waitFor();
  await card.waitFor({ state: 'detached' });
  await screenshot('inbox-approved');
  console.log(`INFO psycopg: ${res.out.trim().split('\n').join(' | ')}`);
});

await step('statement-html-renders-as-text', async () => {
  const client = pgClient('update-xss', XSS_DSN);
  await client.waitFor('HOLDING');
  const card = page.locator('#inbox article', { hasText: 'UPDATE xss_t' });
  await card.waitFor();
  const reviewId = await card.getAttribute('data-id');
  const text = await card.locator('pre.sql').textContent();
  const want = "UPDATE xss_t SET v = '<img src=x onerror=window.__xss=1>' WHERE id = $1 AND v <> $2";
  if (text !== want) throw new Error(`statement shown as ${JSON.stringify(text)}, want ${JSON.stringify(want)}`);
  const params = await card.locator('code.param').allTextContents();
  if (JSON.stringify(params) !== JSON.stringify(['1', '<svg onload=window.__xss=2>'])) {
    throw new Error(`parameters shown as ${JSON.stringify(params)}`);
  }
  const dom = await page.evaluate(() => ({
    img: document.querySelectorAll('main img').length,
    svg: document.querySelectorAll('main svg').length,
    xss: window.__xss ?? null,
  }));
  if (dom.img || dom.svg || dom.xss !== null) throw new Error(`markup from the statement reached the DOM: ${JSON.stringify(dom)}`);
  await screenshot('inbox-html-as-text');
  await card.getByLabel('Reason (optional)').fill('no markup in data');
  await card.getByRole('button', { name: 'Reject', exact: true }).click();
  const res = await client.finished();
  if (res.code !== 0 || !res.out.includes('OK rejected 57014')) throw new Error(`client:\n${client.output()}`);
  await page.locator(`#recent tbody tr[data-id="${reviewId}"]`).getByText('rejected').waitFor();
});

await step('access-requests', async () => {
  await go('Access requests');
  await page.getByRole('heading', { level: 1, name: 'Access requests' }).waitFor();
  const theirs = page.locator('#access-pending article', { hasText: ACCESS_REQUESTER }).first();
  await theirs.waitFor();
  await checkPage('access requests');
  await screenshot('access-requests');
  // Read the id first: the card goes once the request is decided.
  const requestId = await theirs.locator('dd code').first().textContent();
  await theirs.getByRole('button', { name: 'Approve', exact: true }).click();
  await page.locator(`#access-all tbody tr[data-id="${requestId}"]`).getByText('approved').waitFor();
  // Asking for access ourselves: our own request cannot be approved by us.
  await page.getByLabel('Connection').selectOption('restricted');
  await page.getByLabel('For how long').fill('30m');
  await page.getByLabel('Reason', { exact: true }).fill('console test');
  await page.getByRole('button', { name: 'Request access' }).click();
  const notice = page.locator('.notice', { hasText: 'Requested ar-' });
  await notice.waitFor();
  const mineId = /ar-[0-9a-f]{16}/.exec(await notice.textContent())[0];
  const mine = page.locator(`#access-${mineId}`);
  await mine.getByText(LOGIN).first().waitFor();
  await mine.getByText('You asked for this').waitFor();
  if (!(await mine.getByRole('button', { name: 'Approve', exact: true }).isDisabled())) {
    throw new Error('self-approval offered');
  }
  await screenshot('access-requested');
});

await step('kill-a-live-session', async () => {
  const victim = pgClient('sleep', KILL_DSN);
  await victim.waitFor('CONNECTED');
  await go('Sessions');
  const row = page.locator(`#live-sessions tbody tr[data-subject="${KILL_SUBJECT}"]`);
  await row.waitFor();
  await checkPage('sessions');
  await screenshot('sessions');
  await row.getByRole('button', { name: /^Kill session/ }).click();
  const dialog = page.getByRole('dialog', { name: 'End this session?' });
  await dialog.waitFor();
  await screenshot('kill-confirmation');
  await dialog.getByRole('button', { name: 'End session' }).click();
  const res = await victim.finished();
  if (res.code !== 0 || !/OK (ended 57P01|closed)/.test(res.out)) {
    throw new Error(`the killed client did not see its session end:\n${victim.output()}`);
  }
  await row.waitFor({ state: 'detached' });
  console.log(`INFO killed client: ${res.out.trim().split('\n').pop()}`);
});

await step('replay-a-recorded-session', async () => {
  const row = page.locator(`#recent-sessions tbody tr[data-subject="${DROP_SUBJECT}"]`).first();
  await row.waitFor();
  await row.getByRole('link', { name: /^Replay/ }).click();
  await page.getByRole('heading', { level: 1, name: /^Replay of session/ }).waitFor();
  const timeline = page.locator('#timeline');
  const drop = timeline.locator('li.ev-statement', { hasText: `DROP TABLE ${DROP_TABLE}` });
  await drop.waitFor();
  await drop.getByText('approved', { exact: true }).waitFor();
  const select = timeline.locator('li.ev-statement', { hasText: 'SELECT 41 + $1 AS answer' });
  await select.waitFor();
  await timeline.locator('li.ev-statement .completion td', { hasText: '42' }).first().waitFor();
  await timeline.locator('li.ev-statement .completion', { hasText: 'DROP TABLE' }).first().waitFor();
  await page.locator('#verify-status', { hasText: 'verified' }).waitFor();
  await checkPage('replay');
  await screenshot('replay');
  // Play from the start with no pauses: the position climbs to the end.
  const total = await timeline.locator(':scope > li').count();
  await page.getByLabel('Speed').selectOption('0');
  await page.locator('#play').click();
  const early = await page.locator('#position-text').textContent();
  await page.locator('#position-text', { hasText: `${total} of ${total} events` }).waitFor();
  const first = Number(early.split(' ')[0]);
  if (!(first < total)) throw new Error(`playback did not start from the beginning (${early})`);
  // Pause holds the position (at 1x every step takes at least 250 ms, time enough).
  await page.getByLabel('Speed').selectOption('1');
  await page.locator('#play').click(); // Play from start
  await page.waitForTimeout(400);
  await page.locator('#play', { hasText: 'Pause' }).click();
  const held = await page.locator('#position-text').textContent();
  await page.waitForTimeout(700);
  const after = await page.locator('#position-text').textContent();
  if (held !== after) throw new Error(`paused playback moved: ${held} -> ${after}`);
  await page.locator('#show-all').click();
  await page.locator('#position-text', { hasText: `${total} of ${total} events` }).waitFor();
});

await step('audit-trail', async () => {
  await go('Audit');
  await page.locator('#audit-verify', { hasText: 'verified' }).waitFor();
  const rows = await page.locator('#audit-events tbody tr').count();
  if (rows < 1) throw new Error('no audit events shown');
  // The export goes through fetch (it needs the bearer token) and a download.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export JSON lines' }).click(),
  ]);
  const file = path.join(OUT, 'audit-export.jsonl');
  await download.saveAs(file);
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  if (lines.length < 1 || !lines.every((l) => typeof JSON.parse(l) === 'object')) {
    throw new Error(`the audit export is not JSON lines: ${lines.slice(0, 2).join(' / ')}`);
  }
  await checkPage('audit');
  await screenshot('audit');
});

await step('connections', async () => {
  await go('Connections');
  for (const name of ['app', 'restricted']) {
    await page.locator(`#connections tbody tr[data-name="${name}"]`).waitFor();
  }
  await checkPage('connections');
  await screenshot('connections');
});

await step('sign-out', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sign in to Warden' }).waitFor();
  if (await page.evaluate(() => sessionStorage.getItem('warden.token')) !== null) throw new Error('token kept after sign-out');
  if (await page.getByRole('button', { name: 'Sign out' }).isVisible()) throw new Error('Sign out shown after signing out');
});

await step('sign-in-with-a-pasted-token', async () => {
  const other = await newContext();
  const p = watch(await other.newPage(), 'paste');
  current = p;
  await p.goto(`${BASE}/sessions`);
  await p.getByText('Use a token or API key instead').click();
  await p.getByLabel('Token or API key').fill(PASTE_TOKEN);
  await p.getByRole('button', { name: 'Use this token' }).click();
  // Back where it started, signed in.
  await p.getByRole('heading', { level: 1, name: 'Sessions' }).waitFor();
  const who = await p.locator('#who').textContent();
  if (!who.startsWith(PASTE_SUBJECT)) throw new Error(`header shows ${JSON.stringify(who)}`);
  await screenshot('signed-in-with-token');
  current = page;
  await other.close();
});

if (!failed && offLoopback.length) {
  failed = true;
  console.log(`FAIL no-network: console pages asked for:\n${offLoopback.join('\n')}`);
}
if (!failed && problems.length) {
  failed = true;
  console.log(`FAIL no-console-errors:\n${problems.join('\n')}`);
}

await browser.close();
killChildren();
if (failed) process.exit(1);
console.log('OK no console errors');
console.log('OK all');
