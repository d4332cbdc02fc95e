//! Audit scenario `executable-directive-definition-default-arguments`: both
//! subgraphs define the executable directive `@access(scope: Scope!) on FIELD`
//! and keep it in the supergraph with `@composeDirective`, but only `b` gives
//! `scope` a default (`PUBLIC`). The supergraph keeps that default, so a
//! client may write a bare `@access` on any field. Subgraph `a` rejects a bare
//! `@access` (its `scope` has no default), so the gateway must not forward the
//! directive as the client wrote it: it either leaves it out of the subgraph
//! query or sends the argument explicitly.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::json;

const SUITE: &str = "executable-directive-definition-default-arguments";

/// Subgraph `name`, whose only root field `name` answers its own name.
fn subgraph(name: &str) -> JsonSubgraph {
    JsonSubgraph::new(name).query(json!({ name: name }))
}

/// The same subgraph, checking requests against its own schema.
fn with_own_schema(name: &str) -> JsonSubgraph {
    subgraph(name).sdl(&common::fixture(&format!("audit/{SUITE}/{name}.graphql")))
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    start(SUITE, vec![subgraph("a"), subgraph("b")]).await
}

#[tokio::test]
async fn bare_directive_is_accepted_and_each_subgraph_gets_a_query_its_schema_accepts() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("query { a @access b @access }").await;
    assert_eq!(response, json!({"data": {"a": "a", "b": "b"}}));
    for sub in &subs {
        let bodies = sub.recorder.bodies();
        assert_eq!(bodies.len(), 1, "subgraph {}: {bodies:?}", sub.name);
        let answer = with_own_schema(&sub.name).answer(&bodies[0]);
        assert!(answer.get("errors").is_none(), "subgraph {} got {} and answers {answer}", sub.name, bodies[0]);
    }
}

/// The test subgraphs enforce what the reference ones do: `a` requires
/// `scope`, `b` defaults it; so forwarding a bare `@access` to `a` shows.
#[test]
fn test_subgraph_a_rejects_a_bare_access_directive_and_b_accepts_it() {
    let a = with_own_schema("a");
    let rejected = a.answer(&json!({"query": "{ a @access }"}));
    assert!(rejected["errors"][0]["message"].as_str().is_some_and(|m| m.contains("scope")), "{rejected}");
    assert_eq!(a.answer(&json!({"query": "{ a @access(scope: PUBLIC) }"})), json!({"data": {"a": "a"}}));
    assert_eq!(with_own_schema("b").answer(&json!({"query": "{ b @access }"})), json!({"data": {"b": "b"}}));
}
