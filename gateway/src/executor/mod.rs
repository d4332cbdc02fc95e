//! Stage 5: run a query plan against the subgraphs and build the response tree.
//!
//! One `match` over plan nodes lives here; fetching, entity batching, merging
//! and error rewriting each have their own file. Subgraph requests run
//! concurrently; the response tree is locked only for the short synchronous
//! steps of reading representations and merging results, never across an await.

mod entities;
mod fetch;

pub(crate) use fetch::{request_body, subgraph_error};
pub mod merge;
pub mod tree;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use hive_router_query_planner::planner::plan_nodes::{PlanNode, QueryPlan};
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::client::SubgraphClient;
use crate::error::{codes, GraphQLError};
use crate::supergraph::Supergraph;
use tree::{Node, Object};

fn no_cookie_subgraphs() -> &'static HashSet<String> {
    static NONE: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    NONE.get_or_init(HashSet::new)
}

/// Per-request state while a plan runs.
pub struct Execution<'a> {
    pub supergraph: &'a Supergraph,
    pub client: &'a SubgraphClient,
    pub variables: &'a Map<String, Value>,
    /// The client's request headers (propagation picks from these per subgraph).
    pub client_headers: &'a HeaderMap,
    /// The W3C `traceparent` sent to subgraphs.
    pub traceparent: Option<http::HeaderValue>,
    /// Whether identical in-flight query fetches are shared.
    pub dedupe: bool,
    /// The signed caller identity sent to every subgraph (none: anonymous).
    pub identity_header: Option<http::HeaderValue>,
    /// Subgraphs that get the client's `Cookie` and may set cookies.
    pub cookie_subgraphs: &'a HashSet<String>,
    /// The caller's verified claims, for header rules that insert them.
    pub identity: Option<&'a gatehouse_common::identity::Identity>,
    /// Headers for the client response: `Set-Cookie` from the cookie
    /// subgraphs and the response headers configured to pass back.
    response_headers: Mutex<Vec<(http::HeaderName, http::HeaderValue)>>,
    /// Bytes of subgraph answers so far: a guess at the response's size.
    received: AtomicUsize,
    data: Mutex<Node>,
    errors: Mutex<Vec<GraphQLError>>,
    /// A subscription's event, answered in place of its primary fetch.
    event: Mutex<Option<crate::client::Received>>,
}

impl<'a> Execution<'a> {
    pub fn new(
        supergraph: &'a Supergraph,
        client: &'a SubgraphClient,
        variables: &'a Map<String, Value>,
        client_headers: &'a HeaderMap,
        traceparent: Option<http::HeaderValue>,
        dedupe: bool,
    ) -> Self {
        Self {
            supergraph,
            client,
            variables,
            client_headers,
            traceparent,
            dedupe,
            identity_header: None,
            cookie_subgraphs: no_cookie_subgraphs(),
            identity: None,
            response_headers: Mutex::new(Vec::new()),
            received: AtomicUsize::new(0),
            data: Mutex::new(Node::Object(Object::new())),
            errors: Mutex::new(Vec::new()),
            event: Mutex::new(None),
        }
    }

    pub async fn run(&self, plan: &QueryPlan) {
        if let Some(node) = &plan.node {
            self.execute(node).await;
        }
    }

    /// Sends `identity` (the signed header value) to every subgraph; header
    /// rules may insert `claims` of it.
    pub fn with_identity(
        mut self,
        identity: Option<http::HeaderValue>,
        claims: Option<&'a gatehouse_common::identity::Identity>,
    ) -> Self {
        self.identity_header = identity;
        self.identity = claims;
        self
    }

    /// Runs the plan for one event of a subscription: the event takes the
    /// place of the subscription's primary fetch, and the rest of the plan
    /// (entity fetches to other subgraphs) runs as for a query.
    pub fn with_event(self, event: crate::client::Received) -> Self {
        *self.event.lock().unwrap_or_else(|e| e.into_inner()) = Some(event);
        self
    }

    fn take_event(&self) -> Option<crate::client::Received> {
        self.event.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Forwards the client's cookies to these subgraphs and keeps their `Set-Cookie`.
    pub fn with_cookie_subgraphs(mut self, subgraphs: &'a HashSet<String>) -> Self {
        self.cookie_subgraphs = subgraphs;
        self
    }

    /// How many bytes the subgraphs have answered with.
    pub fn received_bytes(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// The response tree, the errors collected while building it, and the
    /// headers to add to the client response.
    pub fn finish(self) -> (Node, Vec<GraphQLError>, Vec<(http::HeaderName, http::HeaderValue)>) {
        (
            self.data.into_inner().unwrap_or_else(|e| e.into_inner()),
            self.errors.into_inner().unwrap_or_else(|e| e.into_inner()),
            self.response_headers.into_inner().unwrap_or_else(|e| e.into_inner()),
        )
    }

    fn execute<'n>(&'n self, node: &'n PlanNode) -> BoxFuture<'n, ()> {
        async move {
            match node {
                PlanNode::Fetch(fetch) => self.root_fetch(fetch).await,
                PlanNode::Flatten(flatten) => match flatten.node.as_ref() {
                    PlanNode::Fetch(fetch) => self.entity_fetch(flatten.path.as_slice(), fetch).await,
                    other => {
                        tracing::error!(node = ?std::mem::discriminant(other), "unsupported node under Flatten");
                        self.push_error(GraphQLError::internal());
                    }
                },
                PlanNode::BatchFetch(batch) => self.batch_fetch(batch).await,
                PlanNode::Sequence(sequence) => {
                    for node in &sequence.nodes {
                        self.execute(node).await;
                    }
                }
                PlanNode::Parallel(parallel) => {
                    join_all(parallel.nodes.iter().map(|node| self.execute(node))).await;
                }
                PlanNode::Condition(condition) => {
                    let value = self.variables.get(&condition.condition).and_then(Value::as_bool).unwrap_or(false);
                    let branch = if value { &condition.if_clause } else { &condition.else_clause };
                    if let Some(branch) = branch {
                        self.execute(branch).await;
                    }
                }
                // The subscription's event stands for its primary fetch's answer.
                PlanNode::Subscription(subscription) => match self.take_event() {
                    Some(event) => self.merge_root(&subscription.primary, event),
                    None => {
                        tracing::error!("a subscription plan ran without an event");
                        self.push_error(GraphQLError::internal());
                    }
                },
                PlanNode::Defer(_) => {
                    self.push_error(GraphQLError::new(
                        "@defer is not supported by this gateway",
                        codes::OPERATION_NOT_SUPPORTED,
                    ));
                }
            }
        }
        .boxed()
    }

    fn push_error(&self, error: GraphQLError) {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(error);
    }

    fn push_errors(&self, errors: impl IntoIterator<Item = GraphQLError>) {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).extend(errors);
    }

    fn with_data<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        f(&mut self.data.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
