// The proactive refresh with short-lived access tokens: two tabs holding the
// same token reach its refresh time together, take turns through the Web
// Lock, and the second one uses the first one's broadcast token.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  browser,
  createVerifiedAccount,
  eventually,
  logIn,
  nextBearer,
  openApp,
  operationOf,
  stack,
  stackAndBrowserPerFile,
  watchRefreshes,
} from './stack.js';

const TTL_SECS = 5; // the client refreshes a fifth of the lifetime early: every 4 s

stackAndBrowserPerFile({ env: { AUTH_ACCESS_TOKEN_TTL_SECS: String(TTL_SECS) } });

test('two tabs refresh before expiry, one rotation per expiry, and stay signed in', { timeout: 60_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'timer');
  const context = await browser.newContext();
  const first = await openApp(context, stack);
  await logIn(first, account.username, account.password);
  const second = await openApp(context, stack); // restores, and shares its token
  await second.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();

  const refreshes = watchRefreshes(context);
  const times = [];
  context.on('request', (request) => operationOf(request) === 'Refresh' && times.push(Date.now()));
  const started = Date.now();
  await eventually('three timed refreshes', async () => refreshes.answers.length >= 3, { timeoutMs: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, 500)); // a late second rotation would show now
  const elapsed = (Date.now() - started) / 1000;
  t.diagnostic(`${refreshes.started} refreshSession calls in ${elapsed.toFixed(1)} s, at +${times.map((time) => ((time - started) / 1000).toFixed(2)).join(' s, +')} s`);

  assert.equal(refreshes.maxInFlight, 1, 'two refreshSession calls were in flight at once');
  for (const answer of refreshes.answers) assert.ok(answer.data?.refreshSession?.accessToken, JSON.stringify(answer));
  // One rotation per token lifetime for both tabs, not one per tab.
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] - times[i - 1] > 2_000, `two rotations ${times[i] - times[i - 1]} ms apart: ${times}`);
  }

  // Both tabs are signed in with the same, newest token, in one session
  // (checked right after a refresh, well before the next one).
  const seen = refreshes.answers.length;
  await eventually('the next refresh', async () => refreshes.answers.length > seen, { timeoutMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const tokens = [];
  for (const page of [first, second]) {
    const bearer = nextBearer(page);
    const answered = page.waitForResponse((response) => operationOf(response.request()) === 'Me');
    await page.click('#reload-profile');
    assert.equal((await (await answered).json()).data.me.username, account.username);
    tokens.push(await bearer);
  }
  assert.equal(tokens[0], tokens[1]);
  await first.click('#reload-sessions');
  await eventually('the session list', async () => (await first.locator('#session-rows tr').count()) === 1);
  await context.close();
});
