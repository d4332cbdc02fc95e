// Live updates: each signed-in tab keeps the `accountEvents` subscription
// open over graphql-ws, so that what happens to the account on another
// device reaches it without a reload or a click: a revoked session signs it
// out, an edited profile or a new role shows.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { adminToken, browser, createVerifiedAccount, graphql, logIn, openApp, screenshot, stack, stackAndBrowserPerFile } from './stack.js';

stackAndBrowserPerFile();

const signedIn = (page) => page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
const live = (page) => page.locator('body[data-live="subscribed"]').waitFor();

/** Two devices (separate browsers: separate cookies, separate sessions) signed in as one account. */
async function twoDevices(account) {
  const devices = [];
  for (let i = 0; i < 2; i++) {
    const context = await browser.newContext();
    const page = await openApp(context, stack);
    await logIn(page, account.username, account.password);
    await signedIn(page);
    await live(page);
    devices.push({ context, page });
  }
  return devices;
}

/**
 * Repeats `change(attempt)` on one device until `shown(attempt, timeout)`
 * sees its result on the other. The gateway subscribes to the users subgraph moments after the
 * socket's `subscribe`, and an event published before that is not replayed:
 * the first change may come too early. Fails after five tries.
 */
async function untilShown(change, shown) {
  for (let attempt = 0; attempt < 5; attempt++) {
    await change(attempt);
    try {
      await shown(attempt, 3_000);
      return attempt;
    } catch {
      // not yet subscribed upstream: change again
    }
  }
  throw new Error('the change never reached the other device');
}

test('a session revoked on another device signs this one out at once, with no action here', { timeout: 60_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'revoked');
  const [here, elsewhere] = await twoDevices(account);

  // From this device's session list, revoke the other device's session.
  await here.page.click('#reload-sessions');
  const other = here.page.locator('#session-rows tr[data-current="false"]');
  await other.waitFor();
  const revokedAt = Date.now();
  await other.locator('button.revoke').click();
  await here.page.locator('#notice:not([hidden])', { hasText: 'Session revoked' }).waitFor();

  // The other device signs out by itself (the app never polls): its
  // subscription ended with UNAUTHENTICATED, and the refresh cookie's
  // session is gone.
  await elsewhere.page.locator('body[data-state="signed-out"]').waitFor({ timeout: 10_000 });
  t.diagnostic(`signed out ${Date.now() - revokedAt} ms after the revoke was clicked`);
  assert.equal(await elsewhere.page.locator('#alert-code').textContent(), 'INVALID_REFRESH_TOKEN');
  await screenshot(t, elsewhere.page, '12-revoked-elsewhere');

  // This device is untouched, and its list now shows one session.
  assert.equal(await here.page.getAttribute('body', 'data-state'), 'signed-in');
  await here.page.locator('#session-rows tr').first().waitFor();
  assert.equal(await here.page.locator('#session-rows tr[data-current="false"]').count(), 0);
  await here.context.close();
  await elsewhere.context.close();
});

test('a profile edited and a role granted on another device show here without a reload', { timeout: 90_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'watcher');
  const [editor, watcher] = await twoDevices(account);
  const name = (attempt) => `Live Name ${attempt}`;

  // The editor saves a new display name; the watcher's screen follows.
  const tries = await untilShown(
    async (attempt) => {
      await editor.page.locator('#profile-form [name="displayName"]').fill(name(attempt));
      await editor.page.locator('#profile-form button[type="submit"]').click();
      await editor.page.locator('[data-field="displayName"]', { hasText: name(attempt) }).waitFor();
    },
    (attempt, timeout) => watcher.page.locator('[data-field="displayName"]', { hasText: name(attempt) }).waitFor({ timeout }),
  );
  t.diagnostic(`the edit reached the other device on try ${tries + 1}`);
  assert.equal(await watcher.page.locator('#alert').isHidden(), true);

  // An administrator makes the account ADMIN: the watcher refreshes its
  // token (the roles are in it) and the admin screen appears.
  const admin = await adminToken(stack);
  const me = await watcher.page.evaluate(() => window.gatehouse.request('query { me { id } }'));
  assert.equal(await watcher.page.locator('#admin').isHidden(), true);
  const promoted = await graphql(
    stack,
    'mutation ($id: ID!) { setUserRoles(userId: $id, roles: [ADMIN]) { roles } }',
    { id: me.me.id },
    admin,
  );
  assert.ok(promoted.data?.setUserRoles?.roles.includes('ADMIN'), JSON.stringify(promoted));
  await watcher.page.locator('#admin:not([hidden])').waitFor({ timeout: 10_000 });
  await watcher.page.locator('[data-field="roles"]', { hasText: 'ADMIN' }).waitFor();
  // It can use what the new role allows.
  await watcher.page.locator('#user-rows tr').first().waitFor();
  await editor.context.close();
  await watcher.context.close();
});

test('logging out here closes the live connection without taking it for a revocation', { timeout: 60_000 }, async () => {
  const account = await createVerifiedAccount(stack, 'leaver');
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  await logIn(page, account.username, account.password);
  await live(page);
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket));
  await page.click('#logout');
  await page.locator('body[data-state="signed-out"] #notice', { hasText: 'You are logged out' }).waitFor();
  assert.equal(await page.getAttribute('body', 'data-live'), 'closed');
  assert.equal(await page.locator('#alert').isHidden(), true);
  // Signed out, it opens no new connection.
  await page.waitForTimeout(1_500);
  assert.deepEqual(sockets, []);
  await context.close();
});
