// GraphiQL's fetcher: every request goes through the Gatehouse client, which
// adds the access token, refreshes it before it expires and, on
// UNAUTHENTICATED, refreshes and retries once. Same origin, JSON body: the
// gateway's CSRF rule is satisfied.

import { GatehouseError } from 'gatehouse-client';
import { Kind, parse } from 'graphql';

/**
 * The operation name to send. Right after a switch of tabs GraphiQL may
 * still pass the previous tab's operation name (it updates it a moment after
 * the editor changes): a name the document does not define is dropped when
 * the document holds a single operation, which is then the one that runs.
 */
function operationToRun(query, operationName) {
  if (!operationName) return undefined;
  let names;
  try {
    names = parse(query, { noLocation: true })
      .definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION)
      .map((definition) => definition.name?.value);
  } catch {
    return operationName; // a syntax error: the gateway will say where
  }
  return names.includes(operationName) || names.length !== 1 ? operationName : undefined;
}

/**
 * `onCookieLogin` runs after an operation in the editor logged in with the
 * refresh token in the cookie (the sample `Login`), so the page can take
 * that session over.
 */
export function createFetcher(client, { onCookieLogin = () => {} } = {}) {
  return async ({ query, variables, operationName }) => {
    let result;
    try {
      const data = await client.request(query, variables ?? {}, { operationName: operationToRun(query, operationName) });
      result = { data };
    } catch (error) {
      // Transport failures (no GraphQL errors to show) are GraphiQL's to report.
      if (!(error instanceof GatehouseError) || error.errors.length === 0) throw error;
      result = error.data === null ? { errors: error.errors } : { data: error.data, errors: error.errors };
    }
    const login = result.data?.login;
    if (login && typeof login === 'object' && !login.refreshToken) onCookieLogin();
    return result;
  };
}
