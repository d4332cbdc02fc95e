// The app on a phone (375x667, an iPhone 8's screen): every screen fits the
// width, the tables stay readable and the controls can be tapped. And the
// session list names each device ("Safari on iPhone", "curl") rather than
// printing its raw User-Agent, which stays in the tooltip.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { devices } from 'playwright-core';

import {
  browser,
  createVerifiedAccount,
  eventually,
  logIn,
  openApp,
  screenshot,
  stack,
  stackAndBrowserPerFile,
} from './stack.js';

stackAndBrowserPerFile();

const { defaultBrowserType, ...PHONE } = devices['iPhone 8']; // Chromium emulating its screen, touch and agent
const UA = {
  curl: 'curl/8.5.0',
  firefox: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0',
};
const LOGIN = 'mutation ($l: String!, $p: String!) { login(login: $l, password: $p, refreshTokenIn: BODY) { accessToken } }';

/** Logs in from Node as another device, so the account has another session. */
async function loginFrom(userAgent, login, password) {
  const headers = { 'content-type': 'application/json' };
  if (userAgent) headers['user-agent'] = userAgent;
  const response = await fetch(stack.graphqlUrl, { method: 'POST', headers, body: JSON.stringify({ query: LOGIN, variables: { l: login, p: password } }) });
  const body = await response.json();
  assert.ok(body.data?.login?.accessToken, JSON.stringify(body));
}

/**
 * The page is no wider than the phone's screen: nothing to scroll sideways.
 * (A mobile browser zooms out to fit a page that is too wide, which makes
 * `innerWidth` grow with it: compare with the screen's width too.)
 */
async function assertFits(page, screen) {
  const { width: screenWidth } = page.viewportSize();
  const width = await page.evaluate((screenWidth) => {
    const root = document.documentElement;
    // What sticks out, to name it when the check fails.
    const wide = [...document.querySelectorAll('body *')]
      .filter((element) => element.getClientRects().length > 0 && element.getBoundingClientRect().right > screenWidth + 0.5)
      .slice(0, 5)
      .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${element.className ? `.${element.className}` : ''} (right edge ${Math.round(element.getBoundingClientRect().right)})`);
    return { scroll: root.scrollWidth, client: root.clientWidth, inner: window.innerWidth, wide };
  }, screenWidth);
  assert.ok(
    width.scroll <= width.inner && width.scroll <= width.client && width.inner <= screenWidth,
    `${screen}: the page is ${width.scroll}px wide (window ${width.inner}px) on a ${screenWidth}px screen; too wide: ${width.wide.join(', ')}`,
  );
}

/** A control can be seen and tapped: on screen once scrolled to, not cut off at the sides, finger-sized. */
async function assertReachable(page, selector) {
  const control = page.locator(selector).first();
  await control.scrollIntoViewIfNeeded();
  assert.ok(await control.isVisible(), `${selector} is not visible`);
  const box = await control.boundingBox();
  const { width, height } = page.viewportSize();
  assert.ok(box.x >= 0 && box.x + box.width <= width + 0.5, `${selector} is cut off: x ${box.x}..${box.x + box.width} of ${width}`);
  assert.ok(box.y >= 0 && box.y + box.height <= height + 0.5, `${selector} is off screen: y ${box.y}..${box.y + box.height} of ${height}`);
  assert.ok(box.height >= 32, `${selector} is ${box.height}px tall: too small to tap`);
}

/** Every cell of a table is within the window and shows all its text. */
async function assertReadable(page, table) {
  const cells = await page.locator(`${table} td`).evaluateAll((tds) =>
    tds.map((td) => {
      const box = td.getBoundingClientRect();
      return { text: td.textContent, left: box.left, right: box.right, clipped: td.scrollWidth > td.clientWidth + 1 };
    }),
  );
  const width = page.viewportSize().width;
  assert.ok(cells.length > 0, `${table} has no cells`);
  for (const cell of cells) {
    assert.ok(cell.left >= 0 && cell.right <= width + 0.5, `${table}: "${cell.text}" spans ${cell.left}..${cell.right} of ${width}`);
    assert.ok(!cell.clipped, `${table}: "${cell.text}" is cut off`);
  }
}

test('on a 375x667 phone every screen fits the width and its controls can be tapped', { timeout: 90_000 }, async (t) => {
  const user = await createVerifiedAccount(stack, 'phone');
  await loginFrom(UA.curl, stack.admin.email, stack.admin.password); // a session the admin can revoke
  const context = await browser.newContext(PHONE);
  const page = await openApp(context, stack);
  assert.deepEqual(page.viewportSize(), { width: 375, height: 667 });

  // Signed out: the three forms.
  await assertFits(page, 'log-in form');
  for (const selector of ['[data-tab="login"]', '[data-tab="signup"]', '[data-tab="verify"]', '#login-form button[type="submit"]']) {
    await assertReachable(page, selector);
  }
  await screenshot(t, page, '30-phone-login');
  await page.tap('[data-tab="signup"]');
  await assertFits(page, 'sign-up form');
  await assertReachable(page, '#signup-form button[type="submit"]');
  await page.tap('[data-tab="verify"]');
  await assertFits(page, 'verify form');
  await assertReachable(page, '#verify-form button[type="submit"]');
  await page.tap('[data-tab="login"]');

  // Signed in as the SYS_ADMIN: profile, sessions and the users table.
  await logIn(page, stack.admin.email, stack.admin.password);
  await assertFits(page, 'signed-in screen');
  await page.locator('#user-search [name="search"]').fill(user.username);
  await page.tap('#user-search button');
  const row = page.locator(`#user-rows tr[data-username="${user.username}"]`);
  await eventually('the search to leave only the new user', async () => (await page.locator('#user-rows tr').count()) === 1 && (await row.count()) === 1);
  await eventually('two sessions listed', async () => (await page.locator('#session-rows tr').count()) === 2);
  await assertFits(page, 'signed-in screen with a search');
  for (const selector of [
    '#logout',
    '#reload-profile',
    '#profile-form [name="bio"]',
    '#profile-form button[type="submit"]',
    '#session-rows tr[data-current="false"] button.revoke',
    '#reload-sessions',
    '#user-search [name="search"]',
    '#user-search button',
    `#user-rows tr[data-username="${user.username}"] select`,
    `#user-rows tr[data-username="${user.username}"] button.save-role`,
  ]) {
    await assertReachable(page, selector);
  }
  await assertReadable(page, '#sessions table');
  await assertReadable(page, '#admin table');
  await screenshot(t, page, '31-phone-signed-in');

  // The controls work by touch.
  await row.locator('select').selectOption('ADMIN');
  await row.locator('button.save-role').tap();
  await page.locator('#notice:not([hidden])', { hasText: `${user.username} is now ADMIN` }).waitFor();
  await page.locator('#session-rows tr[data-current="false"] button.revoke').tap();
  await page.locator('#notice:not([hidden])', { hasText: 'Session revoked' }).waitFor();
  await eventually('one session listed', async () => (await page.locator('#session-rows tr').count()) === 1);
  await assertFits(page, 'signed-in screen after the changes');
  await page.locator('#notice').scrollIntoViewIfNeeded();
  await screenshot(t, page, '32-phone-after-changes');
  await page.tap('#logout');
  await page.locator('body[data-state="signed-out"]').waitFor();
  await assertFits(page, 'logged-out screen');
  await context.close();
});

test('the session list names each device, with the raw user agent as its tooltip', { timeout: 60_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'devices');
  await loginFrom(UA.curl, account.username, account.password);
  await loginFrom(UA.firefox, account.username, account.password);
  await loginFrom(null, account.username, account.password); // Node's own fetch: "node"
  const desktop = await browser.newContext(); // headless Chromium on Linux
  const desktopPage = await openApp(desktop, stack);
  await logIn(desktopPage, account.username, account.password);
  const phone = await browser.newContext(PHONE);
  const page = await openApp(phone, stack);
  await logIn(page, account.username, account.password);
  await eventually('five sessions listed', async () => (await page.locator('#session-rows tr').count()) === 5);

  const devices = await page.locator('#session-rows tr').evaluateAll((rows) =>
    rows.map((row) => {
      const cell = row.querySelector('td');
      return { name: cell.textContent, title: cell.getAttribute('title'), current: row.dataset.current === 'true' };
    }),
  );
  const desktopAgent = await desktopPage.evaluate(() => navigator.userAgent);
  const byName = (a, b) => a.name.localeCompare(b.name);
  assert.deepEqual(
    devices.sort(byName),
    [
      { name: 'Chrome on Linux', title: desktopAgent, current: false },
      { name: 'curl', title: UA.curl, current: false },
      { name: 'Firefox on Windows', title: UA.firefox, current: false },
      { name: 'Node.js', title: 'node', current: false },
      { name: 'Safari on iPhone', title: PHONE.userAgent, current: true },
    ],
  );
  await screenshot(t, page, '33-phone-sessions');
  await phone.close();
  await desktop.close();
});
