// The bar above GraphiQL: sign in (the refresh token goes to the HttpOnly
// cookie, the access token stays in the client's memory), who is signed in,
// sign out.

import { useState, useSyncExternalStore } from 'react';

const highestRole = (roles) => (roles?.length ? roles[roles.length - 1] : null);

export function SessionBar({ session, sampleLogin = '', samplePassword = '' }) {
  const state = useSyncExternalStore(session.subscribe, session.get);
  const [login, setLogin] = useState(sampleLogin);
  const [password, setPassword] = useState(samplePassword);
  const { status, user, busy, error } = state;

  const submit = (event) => {
    event.preventDefault();
    session.signIn(login, password);
  };

  return (
    <header className="gh-bar" data-session={status}>
      <span className="gh-title">Gatehouse</span>
      {status === 'signed-in' ? (
        <>
          <span className="gh-who" role="status">
            Signed in
            {user ? (
              <>
                {' as '}
                <strong className="gh-username">{user.username}</strong>
                {highestRole(user.roles) ? <span className="gh-role">{highestRole(user.roles)}</span> : null}
              </>
            ) : null}
            <span className="gh-note">every request below carries your access token</span>
          </span>
          <button type="button" className="gh-button" onClick={() => session.signOut()} disabled={busy}>
            Sign out
          </button>
        </>
      ) : (
        <form className="gh-sign-in" onSubmit={submit} aria-label="Sign in">
          <input
            id="gh-login"
            name="login"
            aria-label="Email or username"
            placeholder="Email or username"
            autoComplete="username"
            required
            value={login}
            onChange={(event) => setLogin(event.target.value)}
          />
          <input
            id="gh-password"
            name="password"
            type="password"
            aria-label="Password"
            placeholder="Password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(event) => setPassword(event.target.value)}
          />
          <button type="submit" className="gh-button" disabled={busy || status === 'restoring'}>
            Sign in
          </button>
          <span className="gh-note">{status === 'restoring' ? 'checking for a session…' : 'signed out'}</span>
        </form>
      )}
      {error ? (
        <span className="gh-error" role="alert">
          {error}
        </span>
      ) : null}
    </header>
  );
}
