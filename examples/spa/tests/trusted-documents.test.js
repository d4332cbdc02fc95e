// The example app with the gateway refusing every operation that is not in
// its trusted documents (GATEWAY_TRUSTED_DOCUMENTS_ONLY): the manifest that
// scripts/build-manifest.mjs builds from the app's operations is all it
// needs, from sign-up to logout, and anything else is refused.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

import { manifestPath, manifestText } from '../scripts/build-manifest.mjs';
import { adminToken, browser, graphql, logIn, newAccount, openApp, signUpThroughForms, stack, stackAndBrowserPerFile } from './stack.js';

stackAndBrowserPerFile({
  env: {
    GATEWAY_TRUSTED_DOCUMENTS: manifestPath,
    GATEWAY_TRUSTED_DOCUMENTS_ONLY: 'true',
    GATEWAY_TRUSTED_DOCUMENTS_BYPASS_SCOPE: 'sys_admin',
  },
});

test('the checked-in manifest lists the operations the app sends', async () => {
  assert.equal(await readFile(manifestPath, 'utf8'), manifestText(), 'run `npm run manifest` in examples/spa');
});

test('the app works end to end with only its trusted documents allowed', { timeout: 90_000 }, async () => {
  const refused = [];
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  page.on('response', async (response) => {
    if (!response.url().startsWith(stack.graphqlUrl)) return;
    const text = await response.text().catch(() => '');
    if (text.includes('PERSISTED_QUERY_NOT_IN_LIST')) refused.push(response.request().postData());
  });

  // Sign up, verify and log in through the app's own forms.
  const account = newAccount('trusted');
  await signUpThroughForms(page, stack, account);
  await logIn(page, account.username, account.password);
  assert.equal(await page.locator('[data-field="username"]').textContent(), account.username);
  await page.locator('body[data-live="subscribed"]').waitFor(); // the live subscription, over graphql-ws

  // Profile, sessions, a reload (which refreshes from the cookie), logout.
  await page.locator('#profile-form [name="displayName"]').fill('Trusted Tester');
  await page.locator('#profile-form button[type="submit"]').click();
  await page.locator('#notice:not([hidden])', { hasText: 'Profile saved' }).waitFor();
  await page.click('#reload-sessions');
  await page.locator('#session-rows tr[data-current="true"]').waitFor();
  // A refused subscribe would have come back by now, as `error` on the socket.
  assert.equal(await page.getAttribute('body', 'data-live-refused'), null, 'the gateway refused the live subscription');
  assert.equal(await page.getAttribute('body', 'data-live'), 'subscribed');
  await page.reload();
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
  assert.equal(await page.locator('[data-field="displayName"]').textContent(), 'Trusted Tester');
  await page.click('#logout');
  await page.locator('body[data-state="signed-out"]').waitFor();
  await context.close();
  assert.deepEqual(refused, [], 'the gateway refused none of the app\'s operations');

  // Anything else is refused before it reaches a subgraph, even from a signed-in user.
  const other = await graphql(stack, '{ me { id } }');
  assert.equal(other.errors?.[0]?.extensions?.code, 'PERSISTED_QUERY_NOT_IN_LIST', JSON.stringify(other));

  // The SYS_ADMIN's scope lets it through (the bypass scope set above).
  const token = await adminToken(stack);
  const adminOwn = await graphql(stack, '{ me { username } }', {}, token);
  assert.ok(adminOwn.data?.me?.username, JSON.stringify(adminOwn));
});
