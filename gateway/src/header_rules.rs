//! Header rules: what the gateway sends each subgraph besides the request
//! body, and which subgraph response headers reach the client.
//!
//! A rule is one line, for every subgraph (`GATEWAY_HEADER_RULES`) or for
//! one (`GATEWAY_SUBGRAPH_HEADER_RULES`, `NAME=RULE`); every subgraph's
//! rules run first, in order, then its own:
//!
//! ```text
//! propagate x-tenant                    the client's header, as sent
//! propagate x-client-*                  every client header with the prefix
//! propagate x-client-version as x-ver   the client's header, renamed
//! insert x-gateway: gatehouse           a fixed value
//! insert x-user-id: claim sub           a claim of the verified token (sub, sid, scope, provider)
//! remove x-client-debug                 drop what an earlier rule added
//! ```
//!
//! The gateway's own headers (content type, length, host, hop-by-hop
//! headers, the signed identity, cookies, trace context) are not for rules
//! to change, and a prefix never matches `Authorization`: the client's token
//! reaches a subgraph only through an explicit `propagate authorization`.

use anyhow::{bail, Context};
use http::{HeaderMap, HeaderName, HeaderValue};

use gatehouse_common::identity::Identity;

/// A header name, or every name with a prefix (`x-client-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Exact(HeaderName),
    Prefix(String),
}

impl Matcher {
    fn matches(&self, name: &HeaderName) -> bool {
        match self {
            Self::Exact(exact) => exact == name,
            // A prefix never takes credentials along.
            Self::Prefix(prefix) => name.as_str().starts_with(prefix.as_str()) && !is_credential(name),
        }
    }
}

/// What an inserted header holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Static(HeaderValue),
    /// A claim of the caller's verified token; nothing is sent for
    /// anonymous callers.
    Claim(Claim),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The user id: the account id, or another provider's own subject.
    Sub,
    /// The session id.
    Sid,
    /// The scopes, space-separated.
    Scope,
    /// The name of the provider that issued the token (`gatehouse` for ours).
    Provider,
}

/// One request header rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Propagate { from: Matcher, to: Option<HeaderName> },
    Insert { name: HeaderName, value: Value },
    Remove(Matcher),
}

/// Headers the gateway owns on subgraph requests.
fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "content-type"
            | "content-length"
            | "content-encoding"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
            | "proxy-authorization"
            | "proxy-connection"
            | "accept"
            | "accept-encoding"
            | "cookie"
            | "traceparent"
            | "tracestate"
            | gatehouse_common::identity::IDENTITY_HEADER
    )
}

fn is_credential(name: &HeaderName) -> bool {
    matches!(name.as_str(), "authorization" | "cookie" | "proxy-authorization")
}

fn header_name(raw: &str, rule: &str) -> anyhow::Result<HeaderName> {
    let name = crate::config::header_name(raw).map_err(|e| anyhow::anyhow!("header rule {rule:?}: {e}"))?;
    if is_reserved(name.as_str()) {
        bail!("header rule {rule:?}: {name} is set by the gateway itself and cannot be changed by a rule");
    }
    Ok(name)
}

fn matcher(raw: &str, rule: &str) -> anyhow::Result<Matcher> {
    match raw.trim().strip_suffix('*') {
        Some(prefix) => {
            let prefix = prefix.to_ascii_lowercase();
            if prefix.len() < 2 || HeaderName::from_bytes(prefix.as_bytes()).is_err() {
                bail!("header rule {rule:?}: a prefix needs at least two characters of a header name before `*`");
            }
            Ok(Matcher::Prefix(prefix))
        }
        None => header_name(raw, rule).map(Matcher::Exact),
    }
}

impl std::str::FromStr for Rule {
    type Err = anyhow::Error;

    fn from_str(rule: &str) -> anyhow::Result<Self> {
        let rule = rule.trim();
        let (action, rest) = rule.split_once(char::is_whitespace).unwrap_or((rule, ""));
        let rest = rest.trim();
        if rest.is_empty() {
            bail!("header rule {rule:?}: expected `propagate NAME [as NEW]`, `insert NAME: VALUE`, `insert NAME: claim CLAIM` or `remove NAME`");
        }
        match action.to_ascii_lowercase().as_str() {
            "propagate" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                match words.as_slice() {
                    [from] => Ok(Rule::Propagate { from: matcher(from, rule)?, to: None }),
                    [from, as_, to] if as_.eq_ignore_ascii_case("as") => {
                        let from = matcher(from, rule)?;
                        if matches!(from, Matcher::Prefix(_)) {
                            bail!("header rule {rule:?}: a prefix cannot be renamed");
                        }
                        Ok(Rule::Propagate { from, to: Some(header_name(to, rule)?) })
                    }
                    _ => bail!("header rule {rule:?}: expected `propagate NAME` or `propagate NAME as NEW`"),
                }
            }
            "insert" => {
                let (name, value) = rest
                    .split_once(':')
                    .with_context(|| format!("header rule {rule:?}: expected `insert NAME: VALUE`"))?;
                let name = header_name(name, rule)?;
                let value = value.trim();
                let value = match value.split_once(char::is_whitespace) {
                    Some((word, claim)) if word.eq_ignore_ascii_case("claim") => Value::Claim(match claim.trim() {
                        "sub" => Claim::Sub,
                        "sid" => Claim::Sid,
                        "scope" => Claim::Scope,
                        "provider" => Claim::Provider,
                        other => bail!("header rule {rule:?}: unknown claim {other:?} (sub, sid, scope or provider)"),
                    }),
                    _ => Value::Static(
                        HeaderValue::from_str(value)
                            .ok()
                            .filter(|_| !value.is_empty())
                            .with_context(|| format!("header rule {rule:?}: {value:?} is not a header value"))?,
                    ),
                };
                Ok(Rule::Insert { name, value })
            }
            "remove" => Ok(Rule::Remove(matcher(rest, rule)?)),
            other => bail!("header rule {rule:?}: unknown action {other:?} (propagate, insert or remove)"),
        }
    }
}

/// Applies `rules` in order to the headers of one subgraph request.
pub fn apply(rules: &[Rule], client: &HeaderMap, identity: Option<&Identity>, out: &mut HeaderMap) {
    for rule in rules {
        match rule {
            Rule::Propagate { from: Matcher::Exact(name), to } => {
                for value in client.get_all(name) {
                    out.append(to.as_ref().unwrap_or(name).clone(), value.clone());
                }
            }
            Rule::Propagate { from, to: _ } => {
                for (name, value) in client {
                    if from.matches(name) && !is_reserved(name.as_str()) {
                        out.append(name.clone(), value.clone());
                    }
                }
            }
            Rule::Insert { name, value } => {
                let value = match value {
                    Value::Static(value) => Some(value.clone()),
                    Value::Claim(claim) => identity.and_then(|identity| claim_value(identity, *claim)),
                };
                match value {
                    Some(value) => {
                        out.insert(name.clone(), value);
                    }
                    None => {
                        // An anonymous caller has no claim to send, and must
                        // not pass one off as a propagated header either.
                        out.remove(name);
                    }
                }
            }
            Rule::Remove(Matcher::Exact(name)) => {
                out.remove(name);
            }
            Rule::Remove(matcher) => {
                let doomed: Vec<HeaderName> = out.keys().filter(|name| matcher.matches(name)).cloned().collect();
                for name in doomed {
                    out.remove(name);
                }
            }
        }
    }
}

fn claim_value(identity: &Identity, claim: Claim) -> Option<HeaderValue> {
    let text = match claim {
        Claim::Sub => identity.subject(),
        Claim::Sid => identity.session_id.to_string(),
        Claim::Scope => identity.scopes.join(" "),
        Claim::Provider => {
            identity.external.as_ref().map_or(crate::jwt_providers::OWN_PROVIDER, |e| e.provider.as_str()).to_owned()
        }
    };
    HeaderValue::from_str(&text).ok()
}

/// Reads a response header name to pass back to clients.
pub fn response_header(raw: &str) -> anyhow::Result<HeaderName> {
    let name = crate::config::header_name(raw)?;
    let owned_by_the_gateway = is_reserved(name.as_str())
        || matches!(
            name.as_str(),
            "set-cookie" | "content-security-policy" | "access-control-allow-origin" | "retry-after" | "vary"
        )
        || name.as_str().starts_with("access-control-");
    if owned_by_the_gateway {
        bail!("{name} is set by the gateway itself and cannot be passed back from a subgraph");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lines: &[&str]) -> Vec<Rule> {
        lines.iter().map(|line| line.parse().unwrap()).collect()
    }

    fn client() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-tenant", "acme"),
            ("x-client-name", "web"),
            ("x-client-version", "1.2"),
            ("authorization", "Bearer secret"),
            ("x-internal", "leak"),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        headers
    }

    fn identity() -> Identity {
        Identity::new(uuid::Uuid::from_u128(7), uuid::Uuid::from_u128(9), vec!["user".into(), "admin".into()])
    }

    fn run(lines: &[&str], identity: Option<&Identity>) -> HeaderMap {
        let mut out = HeaderMap::new();
        apply(&rules(lines), &client(), identity, &mut out);
        out
    }

    #[test]
    fn rules_propagate_rename_insert_and_remove_in_order() {
        let out = run(
            &[
                "propagate x-tenant",
                "propagate x-client-*",
                "propagate x-client-version as x-version",
                "insert x-gateway: gatehouse",
                "insert x-user: claim sub",
                "insert x-scopes: claim scope",
                "remove x-client-name",
            ],
            Some(&identity()),
        );
        assert_eq!(out["x-tenant"], "acme");
        assert_eq!(out["x-client-version"], "1.2");
        assert_eq!(out["x-version"], "1.2");
        assert_eq!(out["x-gateway"], "gatehouse");
        assert_eq!(out["x-user"], uuid::Uuid::from_u128(7).to_string());
        assert_eq!(out["x-scopes"], "user admin");
        assert!(!out.contains_key("x-client-name"));
        assert!(!out.contains_key("x-internal"));
        assert!(!out.contains_key("authorization"));
    }

    #[test]
    fn another_providers_caller_is_named_by_its_own_subject_and_provider() {
        let lines = ["insert x-user: claim sub", "insert x-idp: claim provider"];
        let ours = run(&lines, Some(&identity()));
        assert_eq!(ours["x-idp"], crate::jwt_providers::OWN_PROVIDER);
        let mut outsider = identity();
        outsider.external = Some(gatehouse_common::identity::ExternalSubject {
            provider: "keycloak".into(),
            subject: "f:realm:alice".into(),
        });
        let theirs = run(&lines, Some(&outsider));
        assert_eq!(theirs["x-user"], "f:realm:alice");
        assert_eq!(theirs["x-idp"], "keycloak");
    }

    #[test]
    fn claims_of_anonymous_callers_are_absent_not_forged() {
        let out = run(&["propagate x-user", "insert x-user: claim sub"], None);
        assert!(!out.contains_key("x-user"));
        let mut forged = client();
        forged.insert("x-user", HeaderValue::from_static("someone-else"));
        let mut out = HeaderMap::new();
        apply(&rules(&["propagate x-user", "insert x-user: claim sub"]), &forged, None, &mut out);
        assert!(!out.contains_key("x-user"), "a client cannot pose as a user through a claim header");
    }

    #[test]
    fn authorization_goes_only_when_named() {
        assert!(!run(&["propagate au*", "propagate authoriz*"], None).contains_key("authorization"));
        assert_eq!(run(&["propagate authorization"], None)["authorization"], "Bearer secret");
    }

    #[test]
    fn malformed_and_reserved_rules_are_refused_with_the_reason() {
        for (line, reason) in [
            ("", "expected"),
            ("propagate", "expected"),
            ("copy x-a", "unknown action"),
            ("propagate x-a to x-b", "propagate NAME as NEW"),
            ("propagate x-a* as x-b", "cannot be renamed"),
            ("propagate *", "at least two characters"),
            ("propagate bad header", "propagate NAME"),
            ("propagate content-length", "set by the gateway"),
            ("insert x-gatehouse-identity: forged", "set by the gateway"),
            ("insert host: evil", "set by the gateway"),
            ("insert x-a", "insert NAME: VALUE"),
            ("insert x-a:", "not a header value"),
            ("insert x-a: claim email", "unknown claim"),
            ("insert x-a: line\u{7}break", "not a header value"),
            ("remove cookie", "set by the gateway"),
        ] {
            let error = line.parse::<Rule>().unwrap_err().to_string();
            assert!(error.contains(reason), "{line:?}: {error}");
        }
        assert!(response_header("x-cache").is_ok());
        for name in ["set-cookie", "content-length", "access-control-allow-origin", "bad name"] {
            assert!(response_header(name).is_err(), "{name}");
        }
    }
}
