// gatehouse-client.js: the browser side of Gatehouse authentication, in one
// dependency-free ES module. Copy it, or read it as a reference for wiring
// your own app.
//
// The rules it follows:
//   - The refresh token lives only in the `__Host-` HttpOnly cookie that the
//     auth subgraph sets (through the gateway) when you log in with
//     `refreshTokenIn: COOKIE`. JavaScript never sees it.
//   - The access token lives only in memory (this object): never in
//     localStorage or sessionStorage, where any injected script could read it
//     long after the page is gone. A reload gets a new one from the cookie.
//   - Every call uses `credentials: 'include'` (so the cookie travels to the
//     gateway's origin) and `content-type: application/json` (the gateway
//     refuses "simple" content types that a browser sends without a CORS
//     preflight: that is its CSRF rule).
//   - Refreshing rotates the refresh token, and the server revokes the whole
//     session if an already rotated token is presented again. All tabs share
//     the cookie, so only one tab at a time may refresh: a Web Lock
//     serialises `refreshSession` (and `logout`) across tabs, and a
//     BroadcastChannel hands the fresh access token to the other tabs so they
//     need not rotate again.
//   - While signed in, each tab keeps one WebSocket to the gateway
//     (graphql-ws, the `graphql-transport-ws` subprotocol) subscribed to
//     `accountEvents`. The gateway ends that subscription with
//     UNAUTHENTICATED within a second of the session being revoked anywhere
//     (another device, an administrator, a password change): the tab then
//     tries the refresh cookie and, the session being gone, signs out at once
//     instead of at its next call. A fresh access token is handed to the open
//     socket in a `ping`, so the subscription outlives each token.

const REFRESH = 'mutation Refresh { refreshSession { accessToken expiresIn } }';
const LOGIN =
  'mutation Login($login: String!, $password: String!) { login(login: $login, password: $password, refreshTokenIn: COOKIE) { accessToken expiresIn } }';
const COMPLETE_MFA_LOGIN =
  'mutation CompleteMfaLogin($mfaToken: String!, $code: String!) { completeMfaLogin(mfaToken: $mfaToken, code: $code, refreshTokenIn: COOKIE) { accessToken expiresIn } }';
const COMPLETE_EXTERNAL_LOGIN =
  'mutation CompleteExternalLogin($provider: String!, $code: String!, $state: String!) { completeExternalLogin(provider: $provider, code: $code, state: $state, refreshTokenIn: COOKIE) { accessToken expiresIn } }';
const LINK_EXTERNAL_IDENTITY =
  'mutation LinkExternalIdentity($linkToken: String!, $password: String!) { linkExternalIdentity(linkToken: $linkToken, password: $password, refreshTokenIn: COOKIE) { accessToken expiresIn } }';
const LOGOUT = 'mutation Logout { logout }';
const ACCOUNT_EVENTS = 'subscription AccountEvents { accountEvents { type occurredAt } }';
/** The operations this module sends, for a trusted-documents manifest. */
export const SESSION_OPERATIONS = [
  REFRESH,
  LOGIN,
  COMPLETE_MFA_LOGIN,
  COMPLETE_EXTERNAL_LOGIN,
  LINK_EXTERNAL_IDENTITY,
  LOGOUT,
  ACCOUNT_EVENTS,
];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Refusals of the account-event subscription that a retry cannot change
// (subscriptions turned off, the operation not a trusted document, ...).
const PERMANENT_REFUSALS = new Set([
  'OPERATION_NOT_SUPPORTED',
  'PERSISTED_QUERY_NOT_IN_LIST',
  'GRAPHQL_VALIDATION_FAILED',
  'FORBIDDEN',
  'UNAUTHORIZED_FIELD_OR_TYPE',
]);
// Reconnecting the live socket: 1 s, doubling, at most 30 s, with jitter.
const liveDelay = (attempt) => Math.min(30_000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
// Refresh answers that mean the session is over (for every tab: they share the cookie).
const SESSION_ENDED = new Set(['INVALID_REFRESH_TOKEN', 'REFRESH_TOKEN_REUSED', 'ACCOUNT_DISABLED', 'UNAUTHENTICATED']);

/**
 * A GraphQL or transport error; `code` is the first error's `extensions.code`.
 * Thrown even when the response also has partial `data` (kept here).
 */
export class GatehouseError extends Error {
  constructor(message, code, { errors = [], status = 0, field, data = null } = {}) {
    super(message);
    this.name = 'GatehouseError';
    this.code = code; // e.g. UNAUTHENTICATED, INVALID_CREDENTIALS, RATE_LIMITED, BAD_USER_INPUT
    this.errors = errors; // every GraphQL error of the response
    this.status = status; // the HTTP status (0 when the network failed)
    this.field = field; // BAD_USER_INPUT names the offending input field
    this.data = data; // what the response did answer, if anything
    // MFA_REQUIRED: the login goes on with `completeMfaLogin(mfaToken, code)`.
    this.mfaToken = errors[0]?.extensions?.mfaToken ?? null;
    this.mfaMethods = errors[0]?.extensions?.methods ?? [];
    // ACCOUNT_LINK_REQUIRED: `linkExternalIdentity(linkToken, password)` links and signs in.
    this.linkToken = errors[0]?.extensions?.linkToken ?? null;
  }
}

/**
 * One client per page. Events (listen with `addEventListener`):
 *   `signed-in`     - an access token is available (login, restore, another tab)
 *   `signed-out`    - it is gone (logout here or in another tab, dead session);
 *                     `event.detail.reason` says why (`logout` or an error
 *                     code) and `event.detail.fromOtherTab` where.
 *   `account-event` - something happened to the account, here or on another
 *                     device: `event.detail` is `{ type, occurredAt }`
 *                     (PROFILE_UPDATED, ROLES_CHANGED, SESSION_REVOKED, ...).
 *   `live`          - the account-event subscription's state changed:
 *                     `event.detail` is `{ state }`, `subscribed` or
 *                     `closed`, or `{ state: 'refused', code }`.
 */
export class GatehouseClient extends EventTarget {
  #url;
  #token = null; // the access token: memory only
  #refreshAt = 0; // when to refresh it, in Date.now() milliseconds
  #expiresAt = 0; // when it expires
  #timer = null; // the proactive refresh, at #refreshAt
  #refreshing = null; // this tab's refresh in flight, shared by its callers
  #channel;
  #lockName;
  #live = null; // the account-event socket, while signed in
  #liveReady = false; // its `connection_init` was acknowledged
  #liveAttempts = 0; // failed connections since the last subscription
  #liveTimer = null; // the next reconnection

  constructor({ graphqlUrl, name = 'gatehouse' }) {
    super();
    this.#url = graphqlUrl;
    this.#lockName = `${name}-refresh`;
    // Tabs of the same origin talk over this channel. Locks and channels are
    // per origin, while the cookie is per host (any port): give apps that
    // share a host but not an origin one session each, or expect rotations.
    this.#channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`${name}-session`) : null;
    this.#channel?.addEventListener('message', ({ data }) => {
      if (data?.type === 'token') this.#adopt(data.accessToken, data.expiresAt, 'other-tab');
      if (data?.type === 'signed-out') this.#clear(data.reason, { fromOtherTab: true });
    });
  }

  get signedIn() {
    return this.#token !== null;
  }

  /** On page load: gets an access token from the refresh cookie, if any. */
  async restore() {
    try {
      await this.refresh();
      return true;
    } catch (error) {
      if (error.code === 'NETWORK_ERROR') throw error;
      return false; // no cookie, or a dead session: signed out
    }
  }

  /**
   * Logs in; the refresh token comes back only as the HttpOnly cookie. An
   * account with two-step login throws a GatehouseError with the code
   * MFA_REQUIRED and its `mfaToken`: finish with `completeMfaLogin`.
   */
  async login(login, password) {
    const { login: payload } = await this.#call(LOGIN, { login, password });
    this.#adopt(payload.accessToken, Date.now() + payload.expiresIn * 1000, 'login');
    this.#share();
  }

  /** The second step of a login: a code from the authenticator app, or a recovery code. */
  async completeMfaLogin(mfaToken, code) {
    const { completeMfaLogin: payload } = await this.#call(COMPLETE_MFA_LOGIN, { mfaToken, code });
    this.#signedInWith(payload);
  }

  /**
   * Finishes a sign-in with an outside provider, with the `code` and
   * `state` it sent the browser back with. May throw MFA_REQUIRED (as
   * `login`) or ACCOUNT_LINK_REQUIRED, whose `linkToken` goes to
   * `linkExternalIdentity` with the existing account's password.
   */
  async completeExternalLogin(provider, code, state) {
    const { completeExternalLogin: payload } = await this.#call(COMPLETE_EXTERNAL_LOGIN, { provider, code, state });
    this.#signedInWith(payload);
  }

  /** Links an outside sign-in to the account its email named, proven by the password. */
  async linkExternalIdentity(linkToken, password) {
    const { linkExternalIdentity: payload } = await this.#call(LINK_EXTERNAL_IDENTITY, { linkToken, password });
    this.#signedInWith(payload);
  }

  #signedInWith(payload) {
    this.#adopt(payload.accessToken, Date.now() + payload.expiresIn * 1000, 'login');
    this.#share();
  }

  /** Ends this browser's session (the cookie's) and tells the other tabs. */
  async logout() {
    // The session's end reaches the live socket too: close it first, so
    // that it is not taken for a revocation from elsewhere.
    this.#closeLive();
    const leave = async () => {
      try {
        // No bearer token: the cookie names the session, and an expired token
        // would get the call refused before it reaches the auth service.
        await this.#call(LOGOUT);
      } finally {
        this.#clear('logout'); // signed out here and in other tabs, even if the call failed
      }
    };
    // Under the refresh lock: a tab that would refresh meanwhile waits, then
    // finds it was signed out.
    return navigator.locks ? navigator.locks.request(this.#lockName, leave) : leave();
  }

  /**
   * Runs a query or mutation as the signed-in user and returns its `data`.
   * Refreshes first when the token is due (a throttled background tab may
   * have missed its timer), and on UNAUTHENTICATED (an expired or revoked
   * token) refreshes and retries once. `operationName` picks the operation
   * to run when `query` holds several.
   */
  async request(query, variables = {}, { operationName } = {}) {
    if (this.#token && Date.now() >= this.#refreshAt) await this.refresh().catch(() => {});
    const sentWith = this.#token;
    try {
      return await this.#call(query, variables, sentWith, operationName);
    } catch (error) {
      if (error.code !== 'UNAUTHENTICATED' || !sentWith) throw error;
      // Another tab may have refreshed meanwhile; else refresh here.
      if (this.#token === sentWith) await this.refresh();
      return this.#call(query, variables, this.#token, operationName);
    }
  }

  /** Rotates the refresh cookie for a new access token, once across tabs. */
  refresh() {
    // Callers in this tab share one refresh.
    this.#refreshing ??= this.#refreshAcrossTabs().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  async #refreshAcrossTabs() {
    const before = this.#token;
    const rotate = async () => {
      // While we waited for the lock, another tab may have refreshed and
      // broadcast its token: use it rather than rotate the cookie again.
      if (this.#token && this.#token !== before && Date.now() < this.#refreshAt) return;
      // Or logged out.
      if (before && !this.#token) throw new GatehouseError('signed out', 'UNAUTHENTICATED');
      let payload;
      try {
        ({ refreshSession: payload } = await this.#call(REFRESH));
      } catch (error) {
        // A dead session is dead for every tab; other failures (network,
        // RATE_LIMITED) leave the current token to its expiry.
        if (SESSION_ENDED.has(error.code)) this.#clear(error.code);
        throw error;
      }
      this.#adopt(payload.accessToken, Date.now() + payload.expiresIn * 1000, 'refresh');
      this.#share(); // before the lock is released, so waiting tabs see it
    };
    // Web Locks exist in secure contexts (https, or http://localhost). The
    // lock is held until `rotate` settles, i.e. until the new cookie is stored.
    if (!navigator.locks) return rotate();
    const options = { ifAvailable: true };
    const rotated = await navigator.locks.request(this.#lockName, options, (lock) => lock && rotate().then(() => true));
    if (rotated) return;
    // Another tab is refreshing. Wait for the lock; its broadcast token may
    // arrive just after the lock does, so give it a moment before rotating.
    return navigator.locks.request(this.#lockName, async () => {
      for (let waited = 0; this.#token === before && waited < 200; waited += 10) await sleep(10);
      return rotate();
    });
  }

  #share() {
    this.#channel?.postMessage({ type: 'token', accessToken: this.#token, expiresAt: this.#expiresAt });
  }

  #adopt(token, expiresAt, reason) {
    const wasSignedIn = this.#token !== null;
    this.#token = token;
    this.#expiresAt = expiresAt;
    // Refresh shortly before expiry: a fifth of the lifetime early, at most a minute.
    const lifetime = expiresAt - Date.now();
    this.#refreshAt = expiresAt - Math.min(60_000, lifetime / 5);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), this.#refreshAt - Date.now());
    if (!wasSignedIn) this.dispatchEvent(new CustomEvent('signed-in', { detail: { reason } }));
    this.#watchAccount();
  }

  #clear(reason, { fromOtherTab = false } = {}) {
    clearTimeout(this.#timer);
    this.#closeLive();
    const wasSignedIn = this.#token !== null;
    this.#token = null;
    this.#refreshAt = this.#expiresAt = 0;
    if (!fromOtherTab) this.#channel?.postMessage({ type: 'signed-out', reason });
    if (wasSignedIn || reason === 'logout') {
      this.dispatchEvent(new CustomEvent('signed-out', { detail: { reason, fromOtherTab } }));
    }
  }

  // ---- the live account-event subscription (graphql-ws) ----

  /**
   * Opens the socket and subscribes, or hands the open socket the current
   * token. On graphql-ws the token goes in `connection_init`, and a later
   * one in a `ping` payload (the gateway's re-authentication message).
   */
  #watchAccount() {
    const authorization = () => ({ Authorization: `Bearer ${this.#token}` });
    if (this.#live) {
      if (this.#liveReady) this.#live.send(JSON.stringify({ type: 'ping', payload: authorization() }));
      return; // not yet acknowledged: the acknowledgement sends the newest token
    }
    if (typeof WebSocket !== 'function' || this.#liveTimer) return;
    const socket = new WebSocket(this.#url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    this.#live = socket;
    const send = (message) => socket.send(JSON.stringify(message));
    let sentToken = null;
    socket.addEventListener('open', () => {
      sentToken = this.#token;
      send({ type: 'connection_init', payload: authorization() });
    });
    socket.addEventListener('message', ({ data }) => {
      let message;
      try {
        message = JSON.parse(data);
      } catch {
        return socket.close(4400, 'not JSON');
      }
      switch (message.type) {
        case 'connection_ack':
          this.#liveReady = true;
          // A token that arrived while the socket was opening.
          if (this.#token !== sentToken) send({ type: 'ping', payload: authorization() });
          send({ id: 'account', type: 'subscribe', payload: { query: ACCOUNT_EVENTS, operationName: 'AccountEvents' } });
          this.#liveState({ state: 'subscribed' });
          break;
        case 'ping':
          send({ type: 'pong' });
          break;
        case 'next': {
          const [error] = message.payload?.errors ?? [];
          if (error) return this.#liveEnded(socket, error.extensions?.code ?? 'ERROR');
          const event = message.payload?.data?.accountEvents;
          if (event) {
            this.#liveAttempts = 0;
            this.dispatchEvent(new CustomEvent('account-event', { detail: event }));
          }
          break;
        }
        case 'error': // the subscription was refused
          return this.#liveEnded(socket, message.payload?.[0]?.extensions?.code ?? 'ERROR');
        case 'complete': // the server ended it without a reason (it restarts): subscribe anew
          return this.#liveEnded(socket, null);
      }
    });
    socket.addEventListener('close', () => {
      if (this.#live !== socket) return; // closed on purpose
      this.#forgetLive();
      this.#liveState({ state: 'closed' });
      this.#reconnectLive();
    });
  }

  /** The subscription ended: why decides what comes next. */
  #liveEnded(socket, code) {
    if (this.#live !== socket) return;
    this.#forgetLive().close(1000);
    if (code === 'UNAUTHENTICATED') {
      // The session was revoked, or the token expired: the refresh cookie
      // tells which. A dead session signs every tab out (in `refresh`); a
      // live one gets a new token, and `#adopt` subscribes again.
      this.#liveState({ state: 'closed' });
      this.refresh().catch((error) => {
        if (!SESSION_ENDED.has(error.code)) this.#reconnectLive();
      });
      return;
    }
    this.#liveState(code ? { state: 'refused', code } : { state: 'closed' });
    // Asking again cannot change these answers; anything else may pass.
    if (!PERMANENT_REFUSALS.has(code)) this.#reconnectLive();
  }

  #reconnectLive() {
    if (!this.#token || this.#liveTimer) return;
    this.#liveTimer = setTimeout(() => {
      this.#liveTimer = null;
      if (this.#token) this.#watchAccount();
    }, liveDelay(this.#liveAttempts++));
  }

  #closeLive() {
    clearTimeout(this.#liveTimer);
    this.#liveTimer = null;
    this.#liveAttempts = 0;
    const socket = this.#forgetLive();
    if (socket) {
      socket.close(1000);
      this.#liveState({ state: 'closed' });
    }
  }

  /** Lets go of the live socket (its close event is then ignored); returns it. */
  #forgetLive() {
    const socket = this.#live;
    this.#live = null;
    this.#liveReady = false;
    return socket;
  }

  #liveState(detail) {
    this.dispatchEvent(new CustomEvent('live', { detail }));
  }

  /** One POST to the gateway; returns `data` or throws a GatehouseError. */
  async #call(query, variables = {}, token = null, operationName = undefined) {
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(this.#url, {
        method: 'POST',
        credentials: 'include', // send and accept the refresh cookie cross-origin
        headers,
        body: JSON.stringify(operationName ? { query, variables, operationName } : { query, variables }),
      });
    } catch (cause) {
      throw new GatehouseError(`cannot reach the gateway (${cause.message})`, 'NETWORK_ERROR');
    }
    const body = await response.json().catch(() => null);
    const errors = body?.errors ?? [];
    if (errors.length > 0) {
      const [first] = errors;
      const code = first.extensions?.code ?? `HTTP_${response.status}`;
      const details = { errors, status: response.status, field: first.extensions?.field, data: body.data ?? null };
      throw new GatehouseError(first.message, code, details);
    }
    if (!response.ok || !body?.data) {
      throw new GatehouseError(`the gateway answered HTTP ${response.status}`, `HTTP_${response.status}`, {
        status: response.status,
      });
    }
    return body.data;
  }
}
