//! The GraphiQL page served to browsers at `GET /graphql` when enabled.
//!
//! Its scripts come from a CDN at exact versions, each checked by the browser
//! against a Subresource Integrity hash (computed from the npm tarballs), so a
//! compromised CDN cannot run code on the gateway's origin. The headers editor
//! is on: paste `{"Authorization": "Bearer <accessToken>"}` there after logging in.

pub const GRAPHIQL_HTML: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Gatehouse GraphiQL</title>
    <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
    <link rel="stylesheet" href="https://unpkg.com/graphiql@3.9.0/graphiql.min.css"
      integrity="sha384-QMux00XgRtwRLSYIY3kw2rj1ovk5AuuliAchk+HSQbqdbGFnz9GYuqIlOqxhwCE2" crossorigin="anonymous" />
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL...</div>
    <script src="https://unpkg.com/react@18.3.1/umd/react.production.min.js"
      integrity="sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z" crossorigin="anonymous"></script>
    <script src="https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"
      integrity="sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1" crossorigin="anonymous"></script>
    <script src="https://unpkg.com/graphiql@3.9.0/graphiql.min.js"
      integrity="sha384-8NGfVj4CVlqHajlZj+bPJT4thxPMHMJYn7DWK2CvtopLd02E7qsPHazniBYvVjOO" crossorigin="anonymous"></script>
    <script>
      const defaultQuery = [
        '# Log in (in development the banner of `cargo run` prints the accounts),',
        '# then open the Headers tab below and send the token with every request:',
        '#   { "Authorization": "Bearer <accessToken>" }',
        'mutation Login($login: String!, $password: String!) {',
        '  login(login: $login, password: $password, refreshTokenIn: BODY) { accessToken expiresIn }',
        '}',
        '',
        'query Me {',
        '  me { id username email roles displayName }',
        '}',
        '',
      ].join('\n');
      // Same origin: the JSON content type passes the gateway's CSRF rule.
      const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, {
          fetcher,
          defaultQuery,
          isHeadersEditorEnabled: true,
          // Tokens typed into the headers editor stay out of localStorage.
          shouldPersistHeaders: false,
          defaultEditorToolsVisibility: 'headers',
        })
      );
    </script>
  </body>
</html>
"#;
