// The tabs GraphiQL opens with the first time (afterwards it restores the
// ones the user left): operations that run as they are, in order.

const LOGIN = `# Signs in, as the bar above does: the
# refresh token goes to an HttpOnly cookie
# and the page takes the session over, so
# every request then carries an access
# token that is kept in memory only.
mutation Login($login: String!, $password: String!) {
  login(
    login: $login
    password: $password
    refreshTokenIn: COOKIE
  ) {
    expiresIn
    user {
      username
      roles
    }
  }
}
`;

const ME = `# Who is signed in (from both subgraphs).
query Me {
  me {
    id
    username
    email
    roles
    displayName
    sessions {
      id
      current
      userAgent
      lastUsedAt
    }
  }
}
`;

const USERS = `# Every user, in pages (ADMIN and above).
query Users($first: Int, $after: String, $search: String) {
  users(first: $first, after: $after, search: $search) {
    totalCount
    edges {
      node {
        id
        username
        email
        roles
        active
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
`;

const json = (value) => JSON.stringify(value, null, 2);

/** The tabs, with the development sign-in filled in when the gateway passed one. */
export function sampleTabs({ sampleLogin, samplePassword } = {}) {
  return [
    { query: LOGIN, variables: json({ login: sampleLogin ?? '', password: samplePassword ?? '' }) },
    { query: ME },
    { query: USERS, variables: json({ first: 20, search: null }) },
  ];
}
