// Scenario: pusher-js's browser build in headless Chromium (playwright-core
// driving Debian's chromium), pages served by TestBrowser.
//
// Env: PAGE_URL (the test's page with key, host and port in its query),
// PAGE_URL_REFUSED (the same page from an origin the app does not allow),
// CHROMIUM (the browser binary), and lib.mjs's WS_PORT / API_PORT / APP_*.
//
// Pages a and b, each in its own browser context (two browsers, as far as
// the server can tell), subscribe to browser-public and private-browser. Once
// both are subscribed, the pusher SDK triggers server-event
// {"message":"from the API"} on both channels; once both pages have it on
// both, page a whispers client-typing {"typing":true,"from":"a"} on
// private-browser and the driver waits for b to receive it (and a while more,
// to let an echo to a arrive if there were one). Page r opens the page from
// the refused origin and waits for its connection error. Output:
// {a: obs, b: obs, r: obs, trigger: {status, body, json}, whisper: bool,
//  page_errors: [...]} where obs is the page's window.obs (see browser/page.js).
import { chromium } from 'playwright-core';
import { run, sdk, trigger, sleep } from './lib.mjs';

const pageURL = process.env.PAGE_URL;
const refusedURL = process.env.PAGE_URL_REFUSED;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

// Chromium in a closed network: no component updates, sync, field trials
// or other background fetches, whose refused connections would otherwise
// slow the start or fail it; no sandbox (root in CI) and no GPU. Playwright
// gives the browser a fresh profile (--user-data-dir) in os.tmpdir(), which
// the test points at a temporary directory of its own.
const args = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser;

run(async (obs) => {
  obs.page_errors = [];
  browser = await chromium.launch({ executablePath, headless: true, args });

  const open = async (name, base, channels) => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.on('console', (m) => process.stderr.write(`page ${m.text()}\n`));
    page.on('pageerror', (err) => obs.page_errors.push(`${name}: ${err.message}`));
    const url = new URL(base);
    url.searchParams.set('name', name);
    url.searchParams.set('channels', channels.join(','));
    await page.goto(url.href);
    return page;
  };
  const channels = ['browser-public', 'private-browser'];
  const [a, b, r] = await Promise.all([
    open('a', pageURL, channels),
    open('b', pageURL, channels),
    open('r', refusedURL, channels),
  ]);

  // wait polls page until pred(arg) holds there; the run's own timeout
  // bounds it. Predicates run in the page, on window.obs.
  const wait = (page, pred, arg) => page.waitForFunction(pred, arg, { polling: 20, timeout: 0 });
  const hasAll = (want) => want.every((w) => window.obs.events.some((e) => e.channel === w.channel && e.event === w.event));
  const refused = () => window.obs.errors.length > 0 && window.obs.states[window.obs.states.length - 1] !== 'connecting';

  const subscribed = channels.map((channel) => ({ channel, event: 'pusher:subscription_succeeded' }));
  await Promise.all([a, b].map((p) => wait(p, hasAll, subscribed)));

  obs.trigger = await trigger(sdk(), channels, 'server-event', { message: 'from the API' });
  const delivered = channels.map((channel) => ({ channel, event: 'server-event' }));
  await Promise.all([a, b].map((p) => wait(p, hasAll, delivered)));

  obs.whisper = await a.evaluate(() => window.whisper('private-browser', 'client-typing', { typing: true, from: 'a' }));
  await wait(b, hasAll, [{ channel: 'private-browser', event: 'client-typing' }]);
  await wait(r, refused);
  await sleep(300); // let duplicates or an echo to a arrive, if any

  for (const [name, page] of [['a', a], ['b', b], ['r', r]]) {
    obs[name] = await page.evaluate(() => window.obs);
  }
  await browser.close();
});
