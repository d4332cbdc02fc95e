// Sessions across reloads and tabs: the refresh cookie restores a reload, an
// UNAUTHENTICATED answer is refreshed and retried once, two tabs refreshing
// at once take turns (the server's reuse detection never fires), and logout
// in one tab reaches the others.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  browser,
  createVerifiedAccount,
  eventually,
  graphql,
  logIn,
  nextBearer,
  openApp,
  operationOf,
  screenshot,
  stack,
  stackAndBrowserPerFile,
  watchRefreshes,
} from './stack.js';

stackAndBrowserPerFile();

const signedIn = (page) => page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
const sessionRows = (page) => page.locator('#session-rows tr');

/** Reloads the profile and checks the call went through without an error. */
async function profileStillLoads(page, username) {
  const answered = page.waitForResponse((response) => operationOf(response.request()) === 'Me');
  await page.click('#reload-profile');
  const response = await answered;
  assert.equal(response.status(), 200);
  assert.equal((await response.json()).data.me.username, username);
  assert.equal(await page.locator('#alert').isHidden(), true);
}

test('a reload keeps the user signed in through the refresh cookie', { timeout: 60_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'reload');
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  await logIn(page, account.username, account.password);
  const refreshes = watchRefreshes(context);
  const refreshRequest = page.waitForRequest((request) => operationOf(request) === 'Refresh');

  await page.reload();
  await signedIn(page);
  assert.equal(await page.locator('[data-field="username"]').textContent(), account.username);
  await screenshot(t, page, '10-after-reload');

  // It came back through refreshSession with the cookie, not the body.
  const request = await refreshRequest;
  assert.deepEqual(JSON.parse(request.postData()).variables, {});
  assert.match((await request.allHeaders()).cookie ?? '', /__Host-gatehouse-refresh=/);
  assert.equal(refreshes.started, 1);
  // Still the one session from the login: the reload rotated it, did not add one.
  await eventually('the session list', async () => (await sessionRows(page).count()) === 1);
  assert.equal(await page.locator('#session-rows tr[data-current="true"]').count(), 1);
  await context.close();
});

test('an UNAUTHENTICATED answer refreshes the token and retries the call once', { timeout: 60_000 }, async () => {
  const account = await createVerifiedAccount(stack, 'retry');
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  await logIn(page, account.username, account.password);

  // The next `Me` call goes out with a token the gateway cannot accept.
  const calls = [];
  page.on('response', (response) => calls.push(`${operationOf(response.request())} ${response.status()}`));
  let tampered = false;
  await context.route(stack.graphqlUrl, (route) => {
    const request = route.request();
    if (!tampered && operationOf(request) === 'Me') {
      tampered = true;
      return route.continue({ headers: { ...request.headers(), authorization: 'Bearer not.a.token' } });
    }
    return route.continue();
  });

  const retried = page.waitForResponse((response) => operationOf(response.request()) === 'Me' && response.status() === 200);
  await page.click('#reload-profile');
  assert.equal((await (await retried).json()).data.me.username, account.username);
  assert.equal(tampered, true);
  assert.deepEqual(calls.filter((c) => !c.startsWith('null')), ['Me 401', 'Refresh 200', 'Me 200']);
  assert.equal(await page.getAttribute('body', 'data-state'), 'signed-in');
  assert.equal(await page.locator('#alert').isHidden(), true);
  await context.close();
});

test('two tabs refreshing at the same moment both stay signed in', { timeout: 60_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'tabs');
  const context = await browser.newContext();
  const first = await openApp(context, stack);
  await logIn(first, account.username, account.password);
  const second = await openApp(context, stack); // signed in from the shared cookie
  await signedIn(second);

  const refreshes = watchRefreshes(context);
  const outcomes = await Promise.all(
    [first, second].map((page) => page.evaluate(() => window.gatehouse.refresh().then(() => 'ok', (e) => e.code))),
  );
  assert.deepEqual(outcomes, ['ok', 'ok']);
  await eventually('every refresh answer', async () => refreshes.answers.length === refreshes.started);
  t.diagnostic(`refreshSession calls for two simultaneous refreshes: ${refreshes.started}`);
  // The Web Lock let one tab rotate at a time; the other used the broadcast
  // token or rotated the new cookie after it: never the same token twice.
  assert.equal(refreshes.maxInFlight, 1, 'two refreshSession calls were in flight at once');
  assert.ok(refreshes.started >= 1 && refreshes.started <= 2, `${refreshes.started} refreshes`);
  for (const answer of refreshes.answers) assert.ok(answer.data?.refreshSession?.accessToken, JSON.stringify(answer));

  // Both tabs hold the newest token, and the session was not revoked.
  const tokens = await Promise.all([first, second].map(async (page) => {
    const bearer = nextBearer(page);
    await profileStillLoads(page, account.username);
    return bearer;
  }));
  assert.equal(tokens[0], tokens[1], 'both tabs use the same, newest access token');
  await second.click('#reload-sessions');
  await eventually('the session list', async () => (await sessionRows(second).count()) === 1);
  const again = await second.evaluate(() => window.gatehouse.refresh().then(() => 'ok', (e) => e.code));
  assert.equal(again, 'ok', 'the session still refreshes');
  await context.close();
});

test('logout in one tab signs out the other tabs', { timeout: 60_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'logout');
  const context = await browser.newContext();
  const first = await openApp(context, stack);
  await logIn(first, account.username, account.password);
  const second = await openApp(context, stack);
  await signedIn(second);

  // The broadcast reaches the other tab at once.
  await first.click('#logout');
  await first.locator('body[data-state="signed-out"]').waitFor();
  await second.locator('body[data-state="signed-out"] #notice', { hasText: 'You logged out in another tab' }).waitFor();
  await screenshot(t, second, '11-logged-out-in-another-tab');
  await context.close();
});

test('a tab that missed the logout broadcast and has no live connection is signed out on its next call', { timeout: 60_000 }, async () => {
  const account = await createVerifiedAccount(stack, 'missed');
  const context = await browser.newContext();
  const first = await openApp(context, stack);
  await logIn(first, account.username, account.password);
  // A tab without BroadcastChannel (say, an old browser) and without
  // WebSockets (a proxy that blocks them) hears nothing.
  const deaf = await openApp(context, stack, {
    init: () => {
      delete window.BroadcastChannel;
      delete window.WebSocket;
    },
  });
  await signedIn(deaf);
  assert.equal(await deaf.evaluate(() => typeof window.BroadcastChannel + typeof window.WebSocket), 'undefinedundefined');
  const bearer = nextBearer(deaf);
  await profileStillLoads(deaf, account.username);
  const deafToken = await bearer;

  await first.click('#logout');
  await first.locator('body[data-state="signed-out"]').waitFor();
  // Server side: the deaf tab's access token stops working.
  await eventually('the gateway to refuse the logged-out token', async () => {
    const answer = await graphql(stack, '{ me { id } }', {}, deafToken);
    return answer.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED';
  });
  assert.equal(await deaf.getAttribute('body', 'data-state'), 'signed-in', 'no broadcast reached this tab');

  // Its next call: UNAUTHENTICATED, the refresh finds no cookie, signed out.
  await deaf.click('#reload-profile');
  await deaf.locator('body[data-state="signed-out"]').waitFor();
  assert.equal(await deaf.locator('#alert-code').textContent(), 'INVALID_REFRESH_TOKEN');
  await context.close();
});
