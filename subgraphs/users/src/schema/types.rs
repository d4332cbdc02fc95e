//! The GraphQL types of the users subgraph.

use async_graphql::{InputObject, MaybeUndefined, Object, SimpleObject, ID};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::UserRecord;

/// The users subgraph's part of the `User` entity: the profile it owns.
pub struct User(pub UserRecord);

/// A person's account: who they are to Gatehouse (auth) and their profile (users).
#[Object]
impl User {
    /// The account id (shared with the auth subgraph).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The name shown to other people: set at sign-up, then editable.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// A few lines about the person, at most 500 characters.
    async fn bio(&self) -> Option<&str> {
        self.0.bio.as_deref()
    }

    /// An https URL.
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }

    /// When the profile or the account's copied fields last changed.
    async fn updated_at(&self) -> gatehouse_subgraph::DateTime {
        gatehouse_subgraph::DateTime(self.0.updated_at)
    }
}

/// A page of users.
#[derive(SimpleObject)]
pub struct UserConnection {
    /// The users of this page, in order.
    pub edges: Vec<UserEdge>,
    /// Whether more pages follow, and where this one ends.
    pub page_info: PageInfo,
    /// How many users match the search (all pages).
    pub total_count: i64,
}

/// One user of a page, with its place in the list.
#[derive(SimpleObject)]
pub struct UserEdge {
    /// Pass as `after` to get the users following this one.
    pub cursor: String,
    /// The user.
    pub node: User,
}

/// Where a page ends. Shareable: other subgraphs may define the same type.
#[derive(SimpleObject)]
#[graphql(shareable)]
pub struct PageInfo {
    /// Whether another page follows this one.
    pub has_next_page: bool,
    /// The cursor of this page's last item: pass it as `after` for the next
    /// page. Null on an empty page.
    pub end_cursor: Option<String>,
}

/// A profile edit. Absent fields stay as they are; `null` or `""` clears
/// `bio` and `avatarUrl`.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// 1 to 64 characters.
    pub display_name: Option<String>,
    /// At most 500 characters.
    pub bio: MaybeUndefined<String>,
    /// An absolute https URL.
    pub avatar_url: MaybeUndefined<String>,
}

const CURSOR_PREFIX: &str = "user:";

/// An opaque cursor for a position in the users list.
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    let invalid = || ApiError::BadUserInput { field: Some("after"), message: "after: not a valid cursor".into() };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix(CURSOR_PREFIX).ok_or_else(invalid)?;
    Uuid::parse_str(id).map_err(|_| invalid())
}

/// Parses a GraphQL `ID` holding an account id.
pub fn parse_id(id: &ID, field: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| ApiError::BadUserInput { field: Some(field), message: format!("{field}: not a valid user id") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_bad_input() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for junk in ["", "abc", "!!!", &URL_SAFE_NO_PAD.encode("user:nope"), &URL_SAFE_NO_PAD.encode(id.to_string())] {
            assert_eq!(decode_cursor(junk).unwrap_err().code(), "BAD_USER_INPUT");
        }
    }
}
