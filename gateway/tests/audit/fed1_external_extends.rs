//! Audit scenario `fed1-external-extends`: a Federation 1 subgraph extends `User` with
//! `@extends`, its key and `name` `@external`, so `name` must come from the
//! owning subgraph even for users returned by the extending one.

crate::audit_support::external_user::external_user_cases!("fed1-external-extends");
