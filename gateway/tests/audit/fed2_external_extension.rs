//! Audit scenario `fed2-external-extension`: a Federation 2 subgraph extends `User` with
//! `extend type`, its key and `name` `@external`, so `name` must come from the
//! owning subgraph even for users returned by the extending one.

crate::audit_support::external_user::external_user_cases!("fed2-external-extension");
