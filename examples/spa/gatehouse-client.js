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
//     serialises `refreshSession` across tabs, and a BroadcastChannel hands
//     the fresh access token to the other tabs so they need not rotate again.

const REFRESH = 'mutation Refresh { refreshSession { accessToken expiresIn } }';
const LOGIN =
  'mutation Login($login: String!, $password: String!) { login(login: $login, password: $password, refreshTokenIn: COOKIE) { accessToken expiresIn } }';
const LOGOUT = 'mutation Logout { logout }';
/** The operations this module sends, for a trusted-documents manifest. */
export const SESSION_OPERATIONS = [REFRESH, LOGIN, LOGOUT];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
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
  }
}

/**
 * One client per page. Events (listen with `addEventListener`):
 *   `signed-in`  - an access token is available (login, restore, another tab)
 *   `signed-out` - it is gone (logout here or in another tab, dead session);
 *                  `event.detail.reason` says why (`logout` or an error
 *                  code) and `event.detail.fromOtherTab` where.
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

  /** Logs in; the refresh token comes back only as the HttpOnly cookie. */
  async login(login, password) {
    const { login: payload } = await this.#call(LOGIN, { login, password });
    this.#adopt(payload.accessToken, Date.now() + payload.expiresIn * 1000, 'login');
    this.#share();
  }

  /** Ends this browser's session (the cookie's) and tells the other tabs. */
  async logout() {
    try {
      // No bearer token: the cookie names the session, and an expired token
      // would get the call refused before it reaches the auth service.
      await this.#call(LOGOUT);
    } finally {
      this.#clear('logout'); // signed out here and in other tabs, even if the call failed
    }
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
  }

  #clear(reason, { fromOtherTab = false } = {}) {
    clearTimeout(this.#timer);
    const wasSignedIn = this.#token !== null;
    this.#token = null;
    this.#refreshAt = this.#expiresAt = 0;
    if (!fromOtherTab) this.#channel?.postMessage({ type: 'signed-out', reason });
    if (wasSignedIn || reason === 'logout') {
      this.dispatchEvent(new CustomEvent('signed-out', { detail: { reason, fromOtherTab } }));
    }
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
