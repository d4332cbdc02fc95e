// The sign-in state shown in the bar above GraphiQL, kept in step with the
// Gatehouse client (which alone holds the access token, in memory) for
// React's useSyncExternalStore.

const WHO_AM_I = 'query GraphiQLSignedInAs { me { username displayName roles } }';

const ENDED = {
  INVALID_REFRESH_TOKEN: 'Your session has ended.',
  REFRESH_TOKEN_REUSED: 'Your session was ended because its refresh token was used twice.',
  ACCOUNT_DISABLED: 'This account is disabled.',
  UNAUTHENTICATED: 'Your session has ended.',
};

const messageOf = (error) => {
  if (error?.code === 'INVALID_CREDENTIALS') return 'Wrong email, username or password.';
  if (error?.code === 'RATE_LIMITED') return 'Too many attempts: wait a little and try again.';
  return error?.message ?? String(error);
};

export function createSession(client) {
  // status: 'restoring' (page load), 'signed-out' or 'signed-in'.
  let state = { status: 'restoring', user: null, busy: false, error: null };
  const listeners = new Set();
  const set = (patch) => {
    state = { ...state, ...patch };
    for (const listener of listeners) listener();
  };

  let loading = null;
  // Who the access token belongs to (`me` may be null for a moment after a
  // sign-up, until the users subgraph has the account).
  const loadUser = () => {
    loading ??= client
      .request(WHO_AM_I)
      .then(({ me }) => client.signedIn && set({ status: 'signed-in', user: me }))
      .catch(() => client.signedIn && set({ status: 'signed-in', user: null }))
      .finally(() => {
        loading = null;
      });
    return loading;
  };

  client.addEventListener('signed-in', ({ detail }) => {
    set({ status: 'signed-in', error: null });
    // A login from the bar loads the user itself, once the login has settled.
    if (detail.reason !== 'login') loadUser();
  });
  client.addEventListener('signed-out', ({ detail }) => {
    const error = detail.reason === 'logout' ? (detail.fromOtherTab ? 'Signed out in another tab.' : null) : ENDED[detail.reason] ?? null;
    set({ status: 'signed-out', user: null, error });
  });

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get: () => state,

    /** On page load: a session from the refresh cookie, if there is one. */
    async restore() {
      try {
        if (!(await client.restore())) set({ status: 'signed-out' });
      } catch (error) {
        set({ status: 'signed-out', error: messageOf(error) });
      }
    },

    async signIn(login, password) {
      set({ busy: true, error: null });
      try {
        await client.login(login, password);
        await loadUser();
      } catch (error) {
        set({ error: messageOf(error) });
      } finally {
        set({ busy: false });
      }
    },

    async signOut() {
      set({ busy: true, error: null });
      try {
        await client.logout();
      } catch (error) {
        set({ error: `Signed out here; the server did not confirm it (${messageOf(error)}).` });
      } finally {
        set({ busy: false });
      }
    },

    /** After `login(refreshTokenIn: COOKIE)` ran in the editor: use the session it started. */
    async adoptCookieSession() {
      try {
        await client.refresh();
        await loadUser();
      } catch {
        // No cookie after all (e.g. refreshTokenIn: BODY): nothing to take over.
      }
    },
  };
}
