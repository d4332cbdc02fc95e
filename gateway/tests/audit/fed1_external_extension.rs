//! Audit scenario `fed1-external-extension`: a Federation 1 subgraph extends `User` with
//! `extend type`, its key and `name` `@external`, so `name` must come from the
//! owning subgraph even for users returned by the extending one.

use crate::audit_support;

use audit_support::external_user;

const SUITE: &str = "fed1-external-extension";

#[tokio::test]
async fn external_field_comes_from_the_owner() {
    external_user::external_field_comes_from_the_owner(SUITE).await;
}

#[tokio::test]
async fn own_field_of_the_extension() {
    external_user::own_field_of_the_extension(SUITE).await;
}

#[tokio::test]
async fn own_and_external_fields() {
    external_user::own_and_external_fields(SUITE).await;
}

#[tokio::test]
async fn provided_external_field() {
    external_user::provided_external_field(SUITE).await;
}
