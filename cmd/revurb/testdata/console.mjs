// Scenario: the debug console (/console, revurb --console) in headless
// Chromium, driven by playwright-core, watching the app while a pusher-js
// client (here, in Node) uses it.
//
// Env: CONSOLE_URL, CHROMIUM, SCREENSHOT (a PNG path), and lib.mjs's
// WS_PORT / API_PORT / APP_*.
//
// The page logs in with the app's id, key and secret and waits to be
// live; the client connects and subscribes to console-demo; the page's
// event creator triggers console-event there, which the client must get;
// the page must show one connection, the channel with its subscriber, and
// the connection, the subscription and the event in its stream. Then a
// second client, user "ada", joins presence-room and whispers
// client-typing there: the page shows ada as a member and the client
// event. Then the screenshot. Output: {login_hidden, trigger, connections,
// channel, kinds, event_row, chart_points, client_events, filtered,
// members, whisper_row, page_errors}.
import { chromium } from 'playwright-core';
import { env, run, newClient, connected, subscribe, waitFor, sdk } from './lib.mjs';

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

run(async (obs) => {
  obs.page_errors = [];
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true, args });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('pageerror', (err) => obs.page_errors.push(err.message));
    page.on('console', (m) => process.stderr.write(`page ${m.text()}\n`));
    await page.goto(process.env.CONSOLE_URL);
    await page.fill('#app-id', env.appId);
    await page.fill('#app-key', env.appKey);
    await page.fill('#app-secret', env.appSecret);
    await page.click('#login-app button');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'live', null, { polling: 20, timeout: 0 });
    obs.login_hidden = await page.isHidden('#login');

    const rec = {};
    const client = newClient(rec);
    await connected(client);
    await subscribe(client, rec, 'console-demo');

    await page.fill('#ev-channel', 'console-demo');
    await page.fill('#ev-name', 'console-event');
    await page.fill('#ev-data', '{"from":"the console"}');
    await page.click('#creator button');
    await page.waitForFunction(() => document.getElementById('ev-result').textContent !== '', null, { polling: 20, timeout: 0 });
    obs.trigger = await page.textContent('#ev-result');
    await waitFor(() => rec.events.some((e) => e.event === 'console-event'));
    obs.client_events = rec.events;

    // What the page shows, once the state has caught up.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#stream tbody tr')];
      return document.getElementById('connections').textContent === '1' &&
        document.querySelector('#channels tbody tr[data-channel="console-demo"]') &&
        rows.some((r) => r.dataset.kind === 'api_event' && r.dataset.event === 'console-event') &&
        document.querySelectorAll('#chart polyline')[0]?.getAttribute('points').split(' ').length >= 3;
    }, null, { polling: 50, timeout: 0 });
    obs.connections = await page.textContent('#connections');
    obs.channel = await page.$$eval('#channels tbody tr[data-channel="console-demo"] td', (tds) => tds.map((td) => td.textContent));
    obs.kinds = await page.$$eval('#stream tbody tr', (trs) => trs.map((tr) => tr.dataset.kind + (tr.dataset.channel ? ' ' + tr.dataset.channel : '')).reverse());
    obs.event_row = await page.$eval('#stream tbody tr[data-kind="api_event"]', (tr) => [...tr.cells].map((td) => td.textContent).slice(1));
    obs.chart_points = await page.$eval('#chart polyline', (p) => p.getAttribute('points').split(' ').length);

    // The filter keeps the channel's rows only.
    await page.fill('#filter-event', 'console-event');
    obs.filtered = await page.$$eval('#stream tbody tr:not([hidden])', (trs) => trs.map((tr) => tr.dataset.kind));
    await page.fill('#filter-event', '');

    // A presence member, and a client event.
    const api = sdk();
    const ada = newClient({}, env.appKey, { channelAuthorization: { customHandler: ({ socketId, channelName }, cb) =>
      cb(null, api.authorizeChannel(socketId, channelName, { user_id: 'ada', user_info: { name: 'Ada' } })) } });
    await connected(ada);
    const room = ada.subscribe('presence-room');
    await new Promise((resolve) => room.bind('pusher:subscription_succeeded', resolve));
    room.trigger('client-typing', { typing: true });
    await page.waitForFunction(() => document.querySelector('#channels tbody tr[data-channel="presence-room"]')?.cells[2].textContent === 'ada' &&
      document.querySelector('#stream tbody tr[data-kind="client_event"]'), null, { polling: 50, timeout: 0 });
    obs.members = await page.$eval('#channels tbody tr[data-channel="presence-room"]', (tr) => [...tr.cells].map((td) => td.textContent));
    obs.whisper_row = await page.$eval('#stream tbody tr[data-kind="client_event"]', (tr) => [...tr.cells].map((td) => td.textContent).slice(1));
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  } finally {
    await browser.close();
  }
});
