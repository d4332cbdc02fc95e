// The whole life of an account through the example app, against the real
// stack: sign up, verify, log in, read fields from both subgraphs, edit the
// profile, revoke another session, have an admin change the role, log out.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  browser,
  eventually,
  graphql,
  logIn,
  newAccount,
  openApp,
  screenshot,
  stack,
  stackAndBrowserPerFile,
  verificationCode,
} from './stack.js';

stackAndBrowserPerFile();

const field = (page, name) => page.locator(`[data-field="${name}"]`);
const alertCode = (page) => page.locator('#alert:not([hidden]) #alert-code');

test('sign up, verify, log in, profile, sessions, admin role change and logout', { timeout: 90_000 }, async (t) => {
  const account = newAccount('flow');
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  let lastAccessToken = null;
  page.on('request', (request) => {
    const authorization = request.headers().authorization;
    if (authorization?.startsWith('Bearer ')) lastAccessToken = authorization.slice('Bearer '.length);
  });
  assert.equal(await page.getAttribute('body', 'data-state'), 'signed-out');
  await screenshot(t, page, '01-login');

  // Sign up; the server's input rules come back as BAD_USER_INPUT.
  await page.click('[data-tab="signup"]');
  const signUp = page.locator('#signup-form');
  await signUp.locator('[name="email"]').fill(account.email);
  await signUp.locator('[name="username"]').fill(account.username);
  await signUp.locator('[name="displayName"]').fill(account.displayName);
  await signUp.locator('[name="password"]').fill('short');
  await signUp.locator('button[type="submit"]').click();
  await assertAlert(page, 'BAD_USER_INPUT');
  await signUp.locator('[name="password"]').fill(account.password);
  await signUp.locator('button[type="submit"]').click();
  await page.locator('#notice:not([hidden])', { hasText: 'verification code' }).waitFor();
  assert.equal(await page.locator('#verify-form [name="email"]').inputValue(), account.email);

  // Logging in before verifying says what is missing.
  await page.click('[data-tab="login"]');
  await page.locator('#login-form [name="login"]').fill(account.email);
  await page.locator('#login-form [name="password"]').fill(account.password);
  await page.locator('#login-form button[type="submit"]').click();
  await assertAlert(page, 'EMAIL_NOT_VERIFIED');

  // Verify with the code from the mail the auth service wrote.
  const code = await verificationCode(stack, account.email);
  await page.click('[data-tab="verify"]');
  await page.locator('#verify-form [name="email"]').fill(account.email);
  await page.locator('#verify-form [name="code"]').fill(code);
  await screenshot(t, page, '02-verify');
  await page.locator('#verify-form button[type="submit"]').click();
  await page.locator('#notice:not([hidden])', { hasText: 'Email verified' }).waitFor();
  assert.equal(await page.locator('#login-form [name="login"]').inputValue(), account.email);

  // A wrong password is named as such.
  await page.locator('#login-form [name="password"]').fill('not the password');
  await page.locator('#login-form button[type="submit"]').click();
  await assertAlert(page, 'INVALID_CREDENTIALS');
  await screenshot(t, page, '03-invalid-credentials');

  // Log in: `me` shows fields from both subgraphs.
  await logIn(page, account.username, account.password);
  assert.equal(await field(page, 'username').textContent(), account.username); // auth
  assert.equal(await field(page, 'email').textContent(), account.email); // auth
  assert.equal(await field(page, 'roles').textContent(), 'GUEST, USER'); // auth
  assert.equal(await field(page, 'emailVerified').textContent(), 'yes'); // auth
  assert.equal(await field(page, 'displayName').textContent(), account.displayName); // users
  assert.equal(await page.locator('#admin').isHidden(), true, 'a USER does not get the admin view');
  await screenshot(t, page, '04-profile');

  // The access token is kept in memory only.
  assert.ok(lastAccessToken, 'the app called the gateway with a bearer token');
  const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
  assert.ok(!stored.includes(lastAccessToken) && !stored.includes('eyJ'), `Web Storage holds a token: ${stored}`);

  // Edit the profile (users subgraph); another session sees the change.
  await page.locator('#profile-form [name="displayName"]').fill('Flow Tester');
  await page.locator('#profile-form [name="bio"]').fill('Edited from the browser test.');
  await page.locator('#profile-form button[type="submit"]').click();
  await page.locator('#notice:not([hidden])', { hasText: 'Profile saved' }).waitFor();
  assert.equal(await field(page, 'displayName').textContent(), 'Flow Tester');
  assert.equal(await field(page, 'bio').textContent(), 'Edited from the browser test.');
  const other = await graphql(
    stack,
    'mutation ($l: String!, $p: String!) { login(login: $l, password: $p, refreshTokenIn: BODY) { accessToken refreshToken } }',
    { l: account.email, p: account.password },
  );
  const { accessToken: otherToken, refreshToken: otherRefresh } = other.data.login;
  const seen = await graphql(stack, '{ me { displayName bio } }', {}, otherToken);
  assert.deepEqual(seen.data.me, { displayName: 'Flow Tester', bio: 'Edited from the browser test.' });

  // Sessions: the browser's and the one just made from Node; revoke the latter.
  await page.click('#reload-sessions');
  const rows = page.locator('#session-rows tr');
  await eventually('two sessions listed', async () => (await rows.count()) === 2);
  assert.equal(await page.locator('#session-rows tr[data-current="true"]').count(), 1);
  await screenshot(t, page, '05-sessions');
  await page.locator('#session-rows tr[data-current="false"] button.revoke').click();
  await page.locator('#notice:not([hidden])', { hasText: 'Session revoked' }).waitFor();
  await eventually('one session listed', async () => (await rows.count()) === 1);
  assert.equal(await page.locator('#session-rows tr[data-current="true"]').count(), 1);
  // Server side: the revoked session can neither refresh nor call.
  const refreshed = await graphql(stack, 'mutation ($r: String) { refreshSession(refreshToken: $r) { accessToken } }', {
    r: otherRefresh,
  });
  assert.equal(refreshed.data, null);
  assert.equal(refreshed.errors[0].extensions.code, 'INVALID_REFRESH_TOKEN');
  await eventually('the revoked session to be refused at the gateway', async () => {
    const answer = await graphql(stack, '{ me { id } }', {}, otherToken);
    return answer.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED';
  });

  // The SYS_ADMIN from the banner, in another browser, makes the user an ADMIN.
  const adminContext = await browser.newContext();
  const adminPage = await openApp(adminContext, stack);
  await logIn(adminPage, stack.admin.email, stack.admin.password);
  await adminPage.locator('#admin:not([hidden])').waitFor();
  await adminPage.locator('#user-search [name="search"]').fill(account.username);
  await adminPage.locator('#user-search button').click();
  const row = adminPage.locator(`#user-rows tr[data-username="${account.username}"]`);
  await eventually('the search to leave only the new user', async () => (await adminPage.locator('#user-rows tr').count()) === 1 && (await row.count()) === 1);
  assert.equal(await adminPage.locator('#user-count').textContent(), '1 user');
  assert.equal(await row.locator('td.roles').textContent(), 'GUEST, USER');
  await screenshot(t, adminPage, '06-admin-users');
  await row.locator('select').selectOption('ADMIN');
  await row.locator('button.save-role').click();
  await adminPage.locator('#notice:not([hidden])', { hasText: `${account.username} is now ADMIN` }).waitFor();
  assert.equal(await row.locator('td.roles').textContent(), 'GUEST, USER, ADMIN');
  await screenshot(t, adminPage, '07-admin-role-changed');
  await adminContext.close();

  // The user sees the new role (read from auth, not from a cached token).
  await page.click('#reload-profile');
  await eventually('the user to see the ADMIN role', async () => (await field(page, 'roles').textContent()) === 'GUEST, USER, ADMIN');
  assert.equal(await page.locator('#admin').isHidden(), false);

  // Log out: the refresh cookie is gone (the device cookie stays: it names a
  // device, not a session, and keeps the owner's own login budget), a reload
  // stays signed out, the token is dead.
  const tokenAtLogout = lastAccessToken;
  await page.click('#logout');
  await page.locator('body[data-state="signed-out"] #notice:not([hidden])', { hasText: 'You are logged out' }).waitFor();
  const cookies = await context.cookies(stack.appUrl);
  assert.deepEqual(cookies.filter((c) => c.name.startsWith('__Host-')).map((c) => c.name), ['__Host-gatehouse-device'], JSON.stringify(cookies));
  await screenshot(t, page, '08-logged-out');
  await page.reload();
  await page.locator('body[data-state="signed-out"]').waitFor();
  await eventually('the access token to be refused after logout', async () => {
    const answer = await graphql(stack, '{ me { id } }', {}, tokenAtLogout);
    return answer.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED';
  });
  await context.close();
});

async function assertAlert(page, code) {
  await page.locator('#alert:not([hidden])').waitFor();
  await eventually(`the alert to show ${code}`, async () => (await alertCode(page).textContent()) === code, {
    timeoutMs: 5_000,
  });
  assert.ok((await page.locator('#alert-message').textContent()).length > 0, 'the alert explains the code');
}
