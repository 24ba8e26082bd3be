// What every console browser test shares: a Chromium context that lets nothing leave
// loopback, and a page watcher that collects console errors and uncaught exceptions of
// console pages (the identity provider's own pages are not ours).

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * A 1366x768 context (a laptop screen) whose requests off loopback are aborted; those
 * made by console pages are pushed to `offLoopback`.
 */
export async function loopbackContext(browser, consoleOrigin, offLoopback) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  await context.route('**/*', (route) => {
    const req = route.request();
    const url = new URL(req.url());
    if (url.protocol === 'data:' || url.protocol === 'blob:' || LOOPBACK.has(url.hostname)) return route.continue();
    let from = '';
    try {
      from = req.frame().url();
    } catch {
      from = '';
    }
    if (from.startsWith(consoleOrigin)) offLoopback.push(`${req.url()} (from ${from})`);
    return route.abort();
  });
  return context;
}

/** Pushes console errors and uncaught exceptions of console pages on `page` to `problems`. */
export function watch(page, consoleOrigin, problems, label, timeout = 20_000) {
  const ours = () => page.url().startsWith(consoleOrigin);
  page.on('console', (m) => {
    if (m.type() === 'error' && ours()) problems.push(`[${label}] console error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => {
    if (ours()) problems.push(`[${label}] uncaught: ${e.message}`);
  });
  page.setDefaultTimeout(timeout);
  return page;
}
