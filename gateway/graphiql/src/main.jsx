// The gateway's GraphiQL page: GraphiQL with sample operations, and a bar
// that signs in through the Gatehouse client. Everything it loads comes
// from the gateway itself (see build.mjs).

import 'graphiql/style.css';
import './page.css';
import './workers.js';

import { GraphiQL } from 'graphiql';
import { createRoot } from 'react-dom/client';
import { GatehouseClient } from 'gatehouse-client';

import { createFetcher } from './fetcher.js';
import { sampleTabs } from './samples.js';
import { createSession } from './session.js';
import { SessionBar } from './SessionBar.jsx';

/** What the gateway put in the page: `{ sampleLogin, samplePassword }`, both optional. */
function readConfig() {
  try {
    return JSON.parse(document.getElementById('gatehouse-config')?.textContent || '{}') ?? {};
  } catch {
    return {};
  }
}

/**
 * Whether GraphiQL has nothing stored from an earlier visit. GraphiQL shows
 * the first default tab's query but not its variables then, so the page
 * passes them itself (only then: afterwards GraphiQL restores what was left).
 */
function firstVisit() {
  try {
    return localStorage.getItem('graphiql:tabState') === null && localStorage.getItem('graphiql:variables') === null;
  } catch {
    return false; // no storage: nothing to restore, but nothing to compare either
  }
}

const config = readConfig();
const tabs = sampleTabs(config);
// The page is served at the GraphQL endpoint itself: same origin, same path.
const client = new GatehouseClient({ graphqlUrl: window.location.pathname });
const session = createSession(client);
const fetcher = createFetcher(client, { onCookieLogin: () => session.adoptCookieSession() });

createRoot(document.getElementById('graphiql-root')).render(
  <>
    <SessionBar session={session} sampleLogin={config.sampleLogin ?? ''} samplePassword={config.samplePassword ?? ''} />
    <main className="gh-graphiql">
      <GraphiQL
        fetcher={fetcher}
        defaultTabs={tabs}
        initialVariables={firstVisit() ? tabs[0].variables : undefined}
        // The bar sends the token; nothing to paste into a headers editor.
        isHeadersEditorEnabled={false}
        shouldPersistHeaders={false}
        defaultEditorToolsVisibility="variables"
      />
    </main>
  </>,
);
session.restore();
