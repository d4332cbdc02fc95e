//! The subgraph's SDL, one way for every subgraph: what the composition
//! script reads and what `_service { sdl }` answers are the same text.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::{SDLExportOptions, ServerResult, Value};

/// How subgraphs export their SDL: Federation v2, with composed directives
/// and the scalars' `@specifiedBy`.
pub fn export_options() -> SDLExportOptions {
    SDLExportOptions::new().federation().compose_directive().include_specified_by()
}

/// Answers `_service { sdl }` with a given SDL (the one the composition
/// script reads), instead of async-graphql's own export, which lacks what
/// the subgraph adds to it (`@authenticated`, say).
pub struct ServiceSdl(Arc<String>);

impl ServiceSdl {
    pub fn new(sdl: String) -> Self {
        Self(Arc::new(sdl))
    }
}

impl ExtensionFactory for ServiceSdl {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ServiceSdl(self.0.clone()))
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ServiceSdl {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.parent_type == "_Service" && info.name == "sdl" {
            return Ok(Some(Value::String(self.0.as_str().to_owned())));
        }
        next.run(ctx, info).await
    }
}
