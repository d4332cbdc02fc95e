//! GraphQL errors as clients see them, and the stable codes they carry.
//!
//! Internal failures are logged where they happen and reach the client only as
//! an [`GraphQLError`] with a generic message and a code from [`codes`].

use serde::Serialize;
use serde_json::{Map, Value};

/// Stable `extensions.code` values. Clients may match on these; never rename one.
pub mod codes {
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const OPERATION_NOT_FOUND: &str = "OPERATION_NOT_FOUND";
    pub const OPERATION_NOT_SUPPORTED: &str = "OPERATION_NOT_SUPPORTED";
    pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";
    /// The request body did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    pub const QUERY_PLANNING_FAILED: &str = "QUERY_PLANNING_FAILED";
    pub const SUPERGRAPH_NOT_READY: &str = "SUPERGRAPH_NOT_READY";
    pub const SUBGRAPH_REQUEST_FAILED: &str = "SUBGRAPH_REQUEST_FAILED";
    pub const SUBGRAPH_TIMEOUT: &str = "SUBGRAPH_TIMEOUT";
    pub const SUBGRAPH_RESPONSE_INVALID: &str = "SUBGRAPH_RESPONSE_INVALID";
    /// Given to subgraph errors that arrive without a code of their own.
    pub const DOWNSTREAM_SERVICE_ERROR: &str = "DOWNSTREAM_SERVICE_ERROR";
    pub const NON_NULL_VIOLATION: &str = "NON_NULL_VIOLATION";
    pub const INTROSPECTION_DISABLED: &str = "INTROSPECTION_DISABLED";
    pub const UNAUTHORIZED_FIELD_OR_TYPE: &str = "UNAUTHORIZED_FIELD_OR_TYPE";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// An APQ hash the gateway does not know: send the query with it.
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// Automatic persisted queries are switched off.
    pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
    /// The APQ hash sent is not the SHA-256 of the query sent with it.
    pub const PERSISTED_QUERY_HASH_MISMATCH: &str = "PERSISTED_QUERY_HASH_MISMATCH";
    /// The gateway runs trusted documents only, and this is not one.
    pub const PERSISTED_QUERY_NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";
    /// A `documentId` no trusted document has.
    pub const PERSISTED_DOCUMENT_NOT_FOUND: &str = "PERSISTED_DOCUMENT_NOT_FOUND";
    /// Demand control: the operation's estimated cost is above the maximum.
    pub const COST_ESTIMATED_TOO_EXPENSIVE: &str = "COST_ESTIMATED_TOO_EXPENSIVE";
    /// A subscription sent as a plain request, which answers once.
    pub const SUBSCRIPTION_TRANSPORT_REQUIRED: &str = "SUBSCRIPTION_TRANSPORT_REQUIRED";
    /// A subscriber read its events too slowly: its subscription was ended
    /// rather than its events kept without bound.
    pub const SLOW_CONSUMER: &str = "SLOW_CONSUMER";
    /// The gateway is shutting down; subscriptions end with this, and the
    /// client subscribes again (to another replica).
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
}

/// One step of a response path: an object key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

impl PathSegment {
    /// Reads a segment from a subgraph's JSON error path.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::Key(s.clone())),
            Value::Number(n) => n.as_u64().map(|n| Self::Index(n as usize)),
            _ => None,
        }
    }
}

/// A [`PathSegment`] that borrows its key, for code that records many paths
/// (entity locations) or walks one deeply (the projector) and makes an owned
/// path only when an error needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStep<'a> {
    Key(&'a str),
    Index(usize),
}

impl PathStep<'_> {
    pub fn owned(self) -> PathSegment {
        match self {
            PathStep::Key(key) => PathSegment::Key(key.to_string()),
            PathStep::Index(i) => PathSegment::Index(i),
        }
    }

    /// Whether this step is `other`.
    pub fn matches(self, other: &PathSegment) -> bool {
        match (self, other) {
            (PathStep::Key(a), PathSegment::Key(b)) => a == b,
            (PathStep::Index(a), PathSegment::Index(b)) => a == *b,
            _ => false,
        }
    }
}

/// A position in the client's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// An error in the shape the GraphQL specification gives it.
#[derive(Debug, Clone, Serialize)]
pub struct GraphQLError {
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<PathSegment>>,
    /// Always holds a `code`.
    pub extensions: Map<String, Value>,
}

impl GraphQLError {
    pub fn new(message: impl Into<String>, code: &'static str) -> Self {
        let mut extensions = Map::new();
        extensions.insert("code".into(), Value::String(code.into()));
        Self { message: message.into(), locations: Vec::new(), path: None, extensions }
    }

    /// Seconds to wait before trying again, when this is a RATE_LIMITED
    /// error that says (`extensions.retryAfter`, as the auth subgraph sends).
    pub fn retry_after(&self) -> Option<u64> {
        (self.extensions.get("code").and_then(Value::as_str) == Some(codes::RATE_LIMITED))
            .then(|| self.extensions.get("retryAfter").and_then(Value::as_u64))
            .flatten()
    }

    pub fn with_path(mut self, path: Vec<PathSegment>) -> Self {
        self.path = Some(path);
        self
    }

    pub fn with_location(mut self, line: usize, column: usize) -> Self {
        self.locations.push(Location { line, column });
        self
    }

    pub fn with_extension(mut self, key: &str, value: Value) -> Self {
        self.extensions.insert(key.to_string(), value);
        self
    }

    /// The stable code of this error.
    pub fn code(&self) -> &str {
        self.extensions.get("code").and_then(Value::as_str).unwrap_or("")
    }

    /// The generic error a client gets when something inside the gateway broke.
    /// The cause must already have been logged by the caller.
    pub fn internal() -> Self {
        Self::new("Internal server error", codes::INTERNAL_SERVER_ERROR)
    }
}

/// Why a request was refused before execution started. Each variant maps to
/// one HTTP status under `application/graphql-response+json`.
#[derive(Debug)]
pub enum RequestError {
    /// The HTTP request itself is malformed (bad JSON, wrong types, bad method).
    BadRequest(GraphQLError),
    /// The document does not parse, or breaks a size limit.
    Parse(GraphQLError),
    /// The document is not valid against the public schema.
    Validation(Vec<GraphQLError>),
    /// Variables do not fit their declared types.
    Variables(Vec<GraphQLError>),
    /// GET used for a mutation, or an unsupported operation kind.
    MethodNotAllowed(GraphQLError),
    /// No supergraph is loaded yet.
    NotReady(GraphQLError),
    /// The operation selects what the caller may not see, and the gateway
    /// is configured to refuse such operations whole.
    Forbidden(Vec<GraphQLError>),
    /// The caller sent too many requests; retry after this many seconds.
    RateLimited(GraphQLError, u64),
    /// The gateway failed; details were logged.
    Internal(GraphQLError),
}

impl RequestError {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::Parse(_) | Self::Validation(_) | Self::Variables(_) => 400,
            Self::MethodNotAllowed(_) => 405,
            Self::Forbidden(_) => 403,
            Self::RateLimited(..) => 429,
            Self::NotReady(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    pub fn into_errors(self) -> Vec<GraphQLError> {
        match self {
            Self::BadRequest(e)
            | Self::Parse(e)
            | Self::MethodNotAllowed(e)
            | Self::NotReady(e)
            | Self::Internal(e)
            | Self::RateLimited(e, _) => vec![e],
            Self::Validation(v) | Self::Variables(v) | Self::Forbidden(v) => v,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(GraphQLError::new(message, codes::BAD_REQUEST))
    }
}
