//! Access rules, the same ones the gateway enforces from the SDL directives.
//!
//! Each guarded field names one [`Rule`] in its resolver (`guard = ...`) and
//! in [`super::sdl::FIELD_RULES`], which writes the matching directive into
//! the SDL. The gateway enforces the directives; these guards enforce them
//! again here, so a request that bypasses the gateway gains nothing.

use async_graphql::{Context, Guard, Result};

use crate::error::AuthError;
use crate::service::{AuthService, RequestContext};

/// `@authenticated` or `@requiresScopes(scopes: [[..]])` (outer list OR, inner list AND).
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    Authenticated,
    Scopes(&'static [&'static [&'static str]]),
}

pub const AUTHENTICATED: Rule = Rule::Authenticated;
pub const ADMIN: Rule = Rule::Scopes(&[&["admin"]]);

impl Rule {
    /// The directive as it appears in the SDL.
    pub fn directive(&self) -> String {
        match self {
            Rule::Authenticated => "@authenticated".to_owned(),
            Rule::Scopes(any_of) => {
                let groups: Vec<String> = any_of
                    .iter()
                    .map(|all_of| {
                        let scopes: Vec<String> = all_of.iter().map(|s| format!("\"{s}\"")).collect();
                        format!("[{}]", scopes.join(", "))
                    })
                    .collect();
                format!("@requiresScopes(scopes: [{}])", groups.join(", "))
            }
        }
    }

    pub fn check_request(&self, request: &RequestContext) -> Result<(), AuthError> {
        let caller = request.caller.as_ref().ok_or(AuthError::Unauthenticated)?;
        match self {
            Rule::Authenticated => Ok(()),
            Rule::Scopes(any_of) => {
                if any_of.iter().any(|all_of| all_of.iter().all(|scope| caller.has_scope(scope))) {
                    Ok(())
                } else {
                    Err(AuthError::UnauthorizedField)
                }
            }
        }
    }
}

impl Guard for Rule {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let request = ctx.data::<RequestContext>()?;
        self.check_request(request)?;
        // Defence in depth: a revoked session's access token may still be
        // inside its lifetime; guarded operations refuse it here as well.
        if let Some(caller) = &request.caller {
            if ctx.data::<AuthService>()?.is_session_revoked(caller).await? {
                return Err(AuthError::Unauthenticated.into());
            }
        }
        Ok(())
    }
}
