// The example app's screens. Everything about tokens and sessions is in
// gatehouse-client.js; this file only renders and calls `client.request`.

import { GatehouseClient } from './gatehouse-client.js';
import {
  BEGIN_TOTP,
  CONFIRM_TOTP,
  DISABLE_MFA,
  EXTERNAL_LOGIN_URL,
  EXTERNAL_PROVIDERS,
  ME,
  RESEND,
  REVOKE,
  SESSIONS,
  SET_ROLES,
  SIGN_UP,
  UNLINK_IDENTITY,
  UPDATE_PROFILE,
  USERS,
  VERIFY,
} from './operations.js';
import { deviceName } from './user-agent.js';

const ROLES = ['GUEST', 'USER', 'ADMIN', 'SYS_ADMIN'];

// What each error code means to a person; the code itself is shown too.
const EXPLAIN = {
  INVALID_CREDENTIALS: 'Wrong email, username or password.',
  EMAIL_NOT_VERIFIED: 'Verify your email first, with the code we mailed you.',
  ACCOUNT_DISABLED: 'This account is disabled.',
  RATE_LIMITED: 'Too many attempts. Wait a few minutes, then try again.',
  UNAUTHENTICATED: 'Your session has ended. Log in again.',
  INVALID_REFRESH_TOKEN: 'Your session has ended. Log in again.',
  REFRESH_TOKEN_REUSED: 'Your session was ended for safety (a refresh token was used twice). Log in again.',
  FORBIDDEN: 'You are not allowed to do that.',
  UNAUTHORIZED_FIELD_OR_TYPE: 'You are not allowed to see that.',
  NETWORK_ERROR: 'Cannot reach the gateway.',
  INVALID_MFA_CODE: 'That code is wrong or was already used. Wait for the next code, or use a recovery code.',
  INVALID_MFA_TOKEN: 'The login took too long. Start over with your password.',
  MFA_ALREADY_ENABLED: 'Two-step login is already on.',
  INVALID_EXTERNAL_LOGIN: 'That sign-in expired or was already used. Start it again.',
  EXTERNAL_LOGIN_FAILED: 'The sign-in provider did not confirm who you are. Start again.',
  EXTERNAL_EMAIL_NOT_VERIFIED: 'The sign-in provider has no verified email for you. Verify it there first.',
  INVALID_LINK_TOKEN: 'Linking took too long. Sign in with the provider again.',
};

// Where a sign-in with an outside provider remembers which provider it
// went to, across the round trip through the provider's pages.
const EXTERNAL_PENDING = 'gatehouse-external-provider';

const $ = (selector) => document.querySelector(selector);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (value !== false && value != null) element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children.filter((c) => c != null));
  return element;
}

function showError(error) {
  const code = error.code ?? 'ERROR';
  // BAD_USER_INPUT messages name the field and the rule: show them as they are.
  const text = code === 'BAD_USER_INPUT' ? error.message : (EXPLAIN[code] ?? error.message);
  $('#alert-code').textContent = code;
  $('#alert-message').textContent = text;
  $('#alert').hidden = false;
  $('#notice').hidden = true;
}

function showNotice(text) {
  $('#notice').textContent = text;
  $('#notice').hidden = false;
  $('#alert').hidden = true;
}

function clearMessages() {
  $('#alert').hidden = true;
  $('#notice').hidden = true;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

/** Runs a form or button action with its button disabled and errors shown. */
async function act(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

function showState(state) {
  document.body.dataset.state = state;
  document.body.dataset.ready = String(state === 'signed-out');
  $('#loading').hidden = state !== 'loading';
  $('#signed-out').hidden = state !== 'signed-out';
  $('#signed-in').hidden = state !== 'signed-in';
  $('#whoami').hidden = state !== 'signed-in';
}

function showTab(name) {
  for (const panel of document.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== name;
  for (const tab of document.querySelectorAll('[data-tab]')) tab.setAttribute('aria-selected', tab.dataset.tab === name);
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// ---- signed in -------------------------------------------------------------

async function loadMe(client) {
  // Right after sign-up the users subgraph may not have the account yet
  // (it arrives through the outbox within moments): `me` is null until then.
  for (let attempt = 0; ; attempt++) {
    const { me } = await client.request(ME);
    if (me || attempt === 40) return me;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function renderMe(me) {
  const fields = (dl, pairs) =>
    dl.replaceChildren(...pairs.flatMap(([label, value, key]) => [h('dt', {}, label), h('dd', { 'data-field': key }, value)]));
  fields($('#account-fields'), [
    ['Username', me.username, 'username'],
    ['Email', me.email ?? '—', 'email'],
    ['Verified', me.emailVerified ? 'yes' : 'no', 'emailVerified'],
    ['Roles', me.roles.join(', '), 'roles'],
    ['Member since', when(me.createdAt), 'createdAt'],
  ]);
  fields($('#profile-fields'), [
    ['Display name', me.displayName, 'displayName'],
    ['Bio', me.bio ?? '—', 'bio'],
    ['Avatar', me.avatarUrl ? h('img', { class: 'avatar', src: me.avatarUrl, alt: '', referrerpolicy: 'no-referrer' }) : '—', 'avatarUrl'],
    ['Updated', when(me.updatedAt), 'updatedAt'],
  ]);
  $('#whoami-name').textContent = `${me.displayName} (@${me.username})`;
  const form = $('#profile-form');
  form.elements.displayName.value = me.displayName;
  form.elements.bio.value = me.bio ?? '';
  form.elements.avatarUrl.value = me.avatarUrl ?? '';
  $('#profile').dataset.loaded = 'true';
  $('#admin').hidden = !me.roles.includes('ADMIN');
  renderMfa(me);
  renderLinked(me);
}

/** The outside sign-ins linked to the account, each with an Unlink button. */
function renderLinked(me) {
  const rows = (me.linkedIdentities ?? []).map((identity) =>
    h(
      'li',
      { 'data-provider': identity.provider },
      h('strong', {}, identity.provider),
      ` ${identity.email ?? ''} · linked ${when(identity.linkedAt)} `,
      h('button', { type: 'button', class: 'unlink link', 'data-provider': identity.provider }, 'Unlink'),
    ),
  );
  $('#linked-rows').replaceChildren(...rows);
  $('#linked-none').hidden = rows.length > 0;
}

/** Shows a "Sign in with …" button per configured outside provider. */
async function loadExternalProviders(client) {
  const { externalLoginProviders } = await client.request(EXTERNAL_PROVIDERS);
  const buttons = externalLoginProviders.map((provider) =>
    h('button', { type: 'button', 'data-external': provider }, `Sign in with ${provider}`),
  );
  $('#external-logins').replaceChildren(...buttons);
  $('#external-logins').hidden = buttons.length === 0;
}

/** A password or outside sign-in was accepted; the code step comes next. */
function showMfaStep(error) {
  $('#mfa-form').elements.mfaToken.value = error.mfaToken;
  showTab('mfa');
  $('#mfa-form').elements.code.focus();
}

/** A "start over" button: clears its form and goes back to the login form. */
function backToLogin(form) {
  form.reset();
  clearMessages();
  showTab('login');
}

/** Goes to the provider; it sends the browser back here with `code` and `state`. */
async function startExternalLogin(client, provider) {
  const redirectUri = `${location.origin}/`;
  const { externalLoginUrl } = await client.request(EXTERNAL_LOGIN_URL, { provider, redirectUri });
  sessionStorage.setItem(EXTERNAL_PENDING, provider);
  location.assign(externalLoginUrl);
}

/**
 * Back from a provider: finishes the sign-in (true), or shows what it
 * needs next (a code, or the existing account's password).
 */
async function finishExternalLogin(client) {
  const params = new URLSearchParams(location.search);
  const provider = sessionStorage.getItem(EXTERNAL_PENDING);
  if (!provider || !(params.has('code') || params.has('error'))) return false;
  sessionStorage.removeItem(EXTERNAL_PENDING);
  // The code is single-use and secret: off the address bar and history.
  history.replaceState(null, '', location.pathname);
  showState('signed-out');
  if (params.has('error')) {
    showError({ code: 'EXTERNAL_LOGIN_FAILED', message: params.get('error_description') ?? params.get('error') });
    return true;
  }
  try {
    await client.completeExternalLogin(provider, params.get('code'), params.get('state') ?? '');
  } catch (error) {
    if (error.code === 'MFA_REQUIRED') {
      showMfaStep(error);
    } else if (error.code === 'ACCOUNT_LINK_REQUIRED') {
      $('#link-form').elements.linkToken.value = error.linkToken;
      $('#link-provider').textContent = provider;
      showTab('link');
    } else {
      showError(error);
    }
  }
  return true;
}

/** The two-step login card: off (turn on), on (codes left, turn off). */
function renderMfa(me) {
  const enrolling = !$('#mfa-enroll').hidden || !$('#mfa-recovery').hidden;
  $('#security').dataset.mfa = me.mfaEnabled ? 'on' : 'off';
  $('#mfa-status').textContent = me.mfaEnabled
    ? `On. ${me.recoveryCodesLeft} recovery code${me.recoveryCodesLeft === 1 ? '' : 's'} left.`
    : 'Off: your password alone logs you in.';
  $('#mfa-begin').hidden = me.mfaEnabled || enrolling;
  $('#mfa-disable').hidden = !me.mfaEnabled || enrolling;
}

async function loadSessions(client) {
  const { me } = await client.request(SESSIONS);
  const rows = (me?.sessions ?? []).map((session) =>
    h(
      'tr',
      { 'data-session-id': session.id, 'data-current': String(session.current) },
      // "Chrome on Linux"; the raw User-Agent is the tooltip.
      h('td', { class: 'device', 'data-label': 'Device', title: session.userAgent }, deviceName(session.userAgent)),
      h('td', { 'data-label': 'Signed in' }, when(session.createdAt)),
      h('td', { 'data-label': 'Last used' }, when(session.lastUsedAt)),
      h(
        'td',
        { class: 'actions', 'data-label': '' },
        session.current
          ? h('span', { class: 'badge current' }, 'this browser')
          : h('button', { type: 'button', class: 'revoke', onclick: (event) => revoke(client, session.id, event.target) }, 'Revoke'),
      ),
    ),
  );
  $('#session-rows').replaceChildren(...rows);
}

async function revoke(client, id, button) {
  await act(button, async () => {
    const { revokeSession } = await client.request(REVOKE, { id });
    showNotice(revokeSession ? 'Session revoked: that device is signed out.' : 'That session had already ended.');
    await loadSessions(client);
  });
}

let usersPage = { search: '', after: null };

async function loadUsers(client, { more = false } = {}) {
  const { users } = await client.request(USERS, {
    first: 20,
    after: more ? usersPage.after : null,
    search: usersPage.search || null,
  });
  usersPage.after = users.pageInfo.endCursor;
  $('#more-users').hidden = !users.pageInfo.hasNextPage;
  $('#user-count').textContent = `${users.totalCount} user${users.totalCount === 1 ? '' : 's'}`;
  const rows = users.edges.map(({ node }) => userRow(client, node));
  if (more) $('#user-rows').append(...rows);
  else $('#user-rows').replaceChildren(...rows);
}

function userRow(client, user) {
  const highest = ROLES.filter((role) => user.roles.includes(role)).pop() ?? 'GUEST';
  const select = h('select', { 'aria-label': `Role of ${user.username}` }, ...ROLES.map((r) => h('option', { value: r, selected: r === highest }, r)));
  const rolesCell = h('td', { class: 'roles', 'data-label': 'Roles' }, user.roles.join(', '));
  const save = h('button', { type: 'button', class: 'save-role' }, 'Set role');
  save.addEventListener('click', () =>
    act(save, async () => {
      // The highest role counts; the ones below it are implied.
      const { setUserRoles } = await client.request(SET_ROLES, { userId: user.id, roles: [select.value] });
      rolesCell.textContent = setUserRoles.roles.join(', ');
      showNotice(`${user.username} is now ${select.value}.`);
    }),
  );
  return h(
    'tr',
    { 'data-username': user.username },
    h('td', { 'data-label': 'Username' }, user.username),
    h('td', { 'data-label': 'Email' }, user.email ?? '—'),
    h('td', { 'data-label': 'Name' }, user.displayName),
    rolesCell,
    h('td', { class: 'actions', 'data-label': 'Role' }, h('span', { class: 'controls' }, select, save)),
  );
}

/**
 * Something happened to the account, in this tab or elsewhere: bring what
 * the screen shows up to date. A revoked session needs nothing here: the
 * client signs out by itself.
 */
async function onAccountEvent(client, { type }) {
  if ($('#profile').dataset.loaded !== 'true') return; // still loading: it will be current
  switch (type) {
    case 'ROLES_CHANGED': {
      await client.refresh(); // the access token carries the roles
      const me = await loadMe(client);
      renderMe(me);
      if (me.roles.includes('ADMIN')) await loadUsers(client);
      break;
    }
    case 'PROFILE_UPDATED':
    case 'EMAIL_VERIFIED':
      renderMe(await loadMe(client));
      break;
    case 'SESSION_REVOKED':
    case 'PASSWORD_CHANGED':
      await loadSessions(client);
      break;
  }
}

async function enterSignedIn(client) {
  showState('signed-in');
  const me = await loadMe(client);
  if (!me) throw Object.assign(new Error('Your profile is not available yet; reload in a moment.'), { code: 'NOT_READY' });
  renderMe(me);
  await loadSessions(client);
  if (me.roles.includes('ADMIN')) await loadUsers(client);
  document.body.dataset.ready = 'true'; // everything on screen is loaded
}

// ---- start -----------------------------------------------------------------

async function main() {
  // The app server says where the gateway is (another origin, same site).
  const config = await (await fetch('/config.json')).json();
  const client = new GatehouseClient({ graphqlUrl: config.graphqlUrl });
  window.gatehouse = client; // for the browser console and the tests

  client.addEventListener('signed-in', () => enterSignedIn(client).catch(showError));
  client.addEventListener('account-event', ({ detail }) => onAccountEvent(client, detail).catch(showError));
  // For the tests and the curious: whether live updates are on.
  client.addEventListener('live', ({ detail }) => {
    document.body.dataset.live = detail.state;
    if (detail.code) document.body.dataset.liveRefused = detail.code;
  });
  client.addEventListener('signed-out', ({ detail }) => {
    $('#profile').dataset.loaded = 'false';
    // Nothing of one account's enrollment may stay on screen for the next.
    $('#mfa-enroll').hidden = true;
    $('#mfa-recovery').hidden = true;
    $('#mfa-recovery-codes').replaceChildren();
    $('#mfa-secret').textContent = '';
    $('#user-rows').replaceChildren();
    $('#session-rows').replaceChildren();
    showState('signed-out');
    showTab('login');
    if (detail.reason === 'logout') showNotice(detail.fromOtherTab ? 'You logged out in another tab.' : 'You are logged out.');
    else showError({ code: detail.reason, message: 'Your session has ended.' });
  });

  for (const tab of document.querySelectorAll('[data-tab]')) {
    tab.addEventListener('click', () => {
      clearMessages();
      showTab(tab.dataset.tab);
    });
  }

  const onSubmit = (selector, action) => {
    const form = $(selector);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      act(form.querySelector('button[type="submit"]'), () => action(form, formValues(form)));
    });
  };

  onSubmit('#login-form', async (form, { login, password }) => {
    clearMessages();
    try {
      await client.login(login.trim(), password); // 'signed-in' shows the profile
      form.reset();
    } catch (error) {
      if (error.code === 'MFA_REQUIRED') {
        // The password was right; the second step takes a code.
        form.reset();
        showMfaStep(error);
        return;
      }
      if (error.code === 'EMAIL_NOT_VERIFIED' && login.includes('@')) $('#verify-form').elements.email.value = login.trim();
      throw error;
    }
  });

  onSubmit('#mfa-form', async (form, { mfaToken, code }) => {
    clearMessages();
    try {
      await client.completeMfaLogin(mfaToken, code.trim());
      form.reset();
      showTab('login');
    } catch (error) {
      form.elements.code.value = '';
      if (error.code === 'INVALID_MFA_TOKEN') showTab('login');
      throw error;
    }
  });
  $('#mfa-cancel').addEventListener('click', () => backToLogin($('#mfa-form')));

  $('#external-logins').addEventListener('click', (event) => {
    const provider = event.target.closest('[data-external]')?.dataset.external;
    if (provider) act(event.target, () => startExternalLogin(client, provider));
  });
  onSubmit('#link-form', async (form, { linkToken, password }) => {
    clearMessages();
    try {
      await client.linkExternalIdentity(linkToken, password);
      form.reset();
      showTab('login');
    } catch (error) {
      form.elements.password.value = '';
      if (error.code === 'MFA_REQUIRED') {
        showMfaStep(error);
        return;
      }
      if (error.code === 'INVALID_LINK_TOKEN') showTab('login');
      throw error;
    }
  });
  $('#link-cancel').addEventListener('click', () => backToLogin($('#link-form')));
  $('#linked-rows').addEventListener('click', (event) => {
    const provider = event.target.closest('button.unlink')?.dataset.provider;
    if (!provider) return;
    act(event.target, async () => {
      await client.request(UNLINK_IDENTITY, { provider });
      showNotice(`Signing in with ${provider} is unlinked.`);
      renderMe(await loadMe(client));
    });
  });

  $('#mfa-begin').addEventListener('click', (event) =>
    act(event.target, async () => {
      const { beginTotpEnrollment } = await client.request(BEGIN_TOTP);
      $('#mfa-secret').textContent = beginTotpEnrollment.secret;
      $('#mfa-uri').href = beginTotpEnrollment.otpauthUri;
      $('#mfa-enroll').hidden = false;
      $('#mfa-begin').hidden = true;
    }),
  );
  onSubmit('#mfa-enroll', async (form, { code }) => {
    const { confirmTotpEnrollment } = await client.request(CONFIRM_TOTP, { code: code.trim() });
    form.reset();
    form.hidden = true;
    $('#mfa-recovery-codes').replaceChildren(...confirmTotpEnrollment.map((recovery) => h('li', {}, recovery)));
    $('#mfa-recovery').hidden = false;
    showNotice('Two-step login is on.');
    renderMe(await loadMe(client));
  });
  $('#mfa-recovery-done').addEventListener('click', async (event) => {
    $('#mfa-recovery-codes').replaceChildren();
    $('#mfa-recovery').hidden = true;
    await act(event.target, async () => renderMe(await loadMe(client)));
  });
  onSubmit('#mfa-disable', async (form, { password }) => {
    await client.request(DISABLE_MFA, { password });
    form.reset();
    showNotice('Two-step login is off.');
    renderMe(await loadMe(client));
  });

  onSubmit('#signup-form', async (form, { email, username, displayName, password }) => {
    const input = { email: email.trim(), username: username.trim(), password, displayName: displayName.trim() || null };
    await client.request(SIGN_UP, { input });
    form.reset();
    $('#verify-form').elements.email.value = input.email;
    showTab('verify');
    showNotice(`Account created. We mailed a verification code to ${input.email}.`);
  });

  onSubmit('#verify-form', async (form, { email, code }) => {
    const { verifyEmail } = await client.request(VERIFY, { email: email.trim(), code: code.trim() });
    if (!verifyEmail) throw Object.assign(new Error('That code is not valid for this email.'), { code: 'BAD_USER_INPUT' });
    form.reset();
    $('#login-form').elements.login.value = email.trim();
    showTab('login');
    showNotice('Email verified. You can log in now.');
  });

  $('#resend').addEventListener('click', (event) =>
    act(event.target, async () => {
      const email = $('#verify-form').elements.email.value.trim();
      await client.request(RESEND, { email });
      showNotice(`If ${email} has an unverified account, a new code is on its way.`);
    }),
  );

  onSubmit('#profile-form', async (form, { displayName, bio, avatarUrl }) => {
    // Absent fields stay as they are; "" clears bio and avatar.
    const input = { bio, avatarUrl };
    if (displayName.trim()) input.displayName = displayName.trim();
    await client.request(UPDATE_PROFILE, { input });
    renderMe(await loadMe(client));
    showNotice('Profile saved.');
  });

  $('#reload-profile').addEventListener('click', (event) => act(event.target, async () => renderMe(await loadMe(client))));
  $('#reload-sessions').addEventListener('click', (event) => act(event.target, () => loadSessions(client)));
  $('#logout').addEventListener('click', (event) => act(event.target, () => client.logout()));
  $('#user-search').addEventListener('submit', (event) => {
    event.preventDefault();
    usersPage = { search: event.target.elements.search.value.trim(), after: null };
    act(event.target.querySelector('button'), () => loadUsers(client));
  });
  $('#more-users').addEventListener('click', (event) => act(event.target, () => loadUsers(client, { more: true })));

  showTab('login');
  loadExternalProviders(client).catch(() => {}); // the password form works without them
  // Back from an outside provider, or a reload: the refresh cookie gets a new access token.
  if (await finishExternalLogin(client)) return;
  if (!(await client.restore())) showState('signed-out');
}

main().catch((error) => {
  showState('signed-out');
  showError(error);
});
