// Two-step login through the example app, against the real stack: turn TOTP
// on from the profile (the test plays the authenticator app), log in with a
// code and with a recovery code, see that no code works twice, turn it off.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';

import { browser, createVerifiedAccount, logIn, openApp, screenshot, stack, stackAndBrowserPerFile } from './stack.js';

stackAndBrowserPerFile();

/** RFC 4648 base32 (no padding) to bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(char);
    if (value < 0) throw new Error(`not base32: ${char}`);
    bits += value.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of `secret` at `seconds`: what an authenticator app shows. */
function totp(secret, seconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(number).padStart(6, '0');
}

const alertCode = (page) => page.locator('#alert:not([hidden]) #alert-code');

/** Logs out through the button and waits for the login form. */
async function logOut(page) {
  await page.locator('#logout').click();
  await page.locator('body[data-state="signed-out"]').waitFor();
}

/** Submits the password and waits for the second step. */
async function passwordStep(page, account) {
  await page.locator('#login-form [name="login"]').fill(account.username);
  await page.locator('#login-form [name="password"]').fill(account.password);
  await page.locator('#login-form button[type="submit"]').click();
  await page.locator('#mfa-form:not([hidden])').waitFor();
}

async function codeStep(page, code) {
  await page.locator('#mfa-form [name="code"]').fill(code);
  await page.locator('#mfa-form button[type="submit"]').click();
}

test('turn on TOTP, log in with a code and a recovery code, no code twice, turn it off', { timeout: 120_000 }, async (t) => {
  const account = await createVerifiedAccount(stack, 'mfa');
  const context = await browser.newContext();
  const page = await openApp(context, stack);
  await logIn(page, account.username, account.password);
  assert.equal(await page.getAttribute('#security', 'data-mfa'), 'off');

  // Enroll: the page shows the secret and the otpauth link; a wrong code is refused.
  await page.locator('#mfa-begin').click();
  await page.locator('#mfa-enroll:not([hidden])').waitFor();
  const secret = (await page.locator('#mfa-secret').textContent()).trim();
  const uri = await page.getAttribute('#mfa-uri', 'href');
  assert.match(uri, new RegExp(`^otpauth://totp/Gatehouse:${account.username}\\?.*secret=${secret}`));
  await screenshot(t, page, 'mfa-01-enroll');
  const t0 = Date.now() / 1000;
  await page.locator('#mfa-enroll [name="code"]').fill(totp(secret, t0 + 600));
  await page.locator('#mfa-enroll button[type="submit"]').click();
  await alertCode(page).filter({ hasText: 'INVALID_MFA_CODE' }).waitFor();
  const first = totp(secret, t0);
  await page.locator('#mfa-enroll [name="code"]').fill(first);
  await page.locator('#mfa-enroll button[type="submit"]').click();
  await page.locator('#mfa-recovery:not([hidden])').waitFor();
  const recovery = await page.locator('#mfa-recovery-codes li').allTextContents();
  assert.equal(recovery.length, 10);
  assert.ok(recovery.every((code) => /^[a-z2-9]{5}-[a-z2-9]{5}$/.test(code)), recovery.join(' '));
  await screenshot(t, page, 'mfa-02-recovery-codes');
  await page.locator('#mfa-recovery-done').click();
  await page.locator('#security[data-mfa="on"]').waitFor();
  assert.match(await page.locator('#mfa-status').textContent(), /10 recovery codes left/);
  assert.equal(await page.locator('#mfa-recovery-codes li').count(), 0, 'the codes are gone from the page');

  // The password alone no longer signs in: the second step asks for a code,
  // and the one that confirmed the enrollment is spent.
  await logOut(page);
  await passwordStep(page, account);
  await screenshot(t, page, 'mfa-03-second-step');
  await codeStep(page, first);
  await alertCode(page).filter({ hasText: 'INVALID_MFA_CODE' }).waitFor();
  assert.equal(await page.getAttribute('body', 'data-state'), 'signed-out');
  await codeStep(page, totp(secret, t0 + 30));
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
  // A reload keeps the two-step session (the refresh cookie carries it).
  await page.reload();
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();

  // A recovery code works once.
  await logOut(page);
  await passwordStep(page, account);
  await codeStep(page, recovery[0].toUpperCase());
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();
  assert.match(await page.locator('#mfa-status').textContent(), /9 recovery codes left/);
  await logOut(page);
  await passwordStep(page, account);
  await codeStep(page, recovery[0]);
  await alertCode(page).filter({ hasText: 'INVALID_MFA_CODE' }).waitFor();
  // Starting over goes back to the password.
  await page.locator('#mfa-cancel').click();
  await page.locator('#login-form:not([hidden])').waitFor();
  await passwordStep(page, account);
  await codeStep(page, recovery[1]);
  await page.locator('body[data-state="signed-in"][data-ready="true"]').waitFor();

  // Turning it off takes the password; then the password alone signs in.
  await page.locator('#mfa-disable [name="password"]').fill('not the password');
  await page.locator('#mfa-disable button[type="submit"]').click();
  await alertCode(page).filter({ hasText: 'INVALID_CREDENTIALS' }).waitFor();
  await page.locator('#mfa-disable [name="password"]').fill(account.password);
  await page.locator('#mfa-disable button[type="submit"]').click();
  await page.locator('#security[data-mfa="off"]').waitFor();
  await logOut(page);
  await logIn(page, account.username, account.password);
  await context.close();
});
