//! What each of the four subgraphs knows: its root fields, how it turns an
//! entity representation into an object, and the fields of its objects.
//!
//! Objects are small `Copy` values (indices into [`crate::data`]), so
//! resolving never allocates; the executor in [`super::exec`] walks the
//! selection sets and writes JSON.

use serde_json::Value as Json;

use crate::data::{self, PRODUCTS, REVIEWS, USERS};

/// One of the four benchmark subgraphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subgraph {
    Accounts,
    Inventory,
    Products,
    Reviews,
}

impl Subgraph {
    pub const ALL: [Subgraph; 4] = [Subgraph::Accounts, Subgraph::Inventory, Subgraph::Products, Subgraph::Reviews];

    pub fn name(self) -> &'static str {
        match self {
            Subgraph::Accounts => "accounts",
            Subgraph::Inventory => "inventory",
            Subgraph::Products => "products",
            Subgraph::Reviews => "reviews",
        }
    }

    /// The subgraph's SDL, as composed into `bench/supergraph.graphql`.
    pub fn sdl(self) -> &'static str {
        match self {
            Subgraph::Accounts => include_str!("../../schema/accounts.graphql"),
            Subgraph::Inventory => include_str!("../../schema/inventory.graphql"),
            Subgraph::Products => include_str!("../../schema/products.graphql"),
            Subgraph::Reviews => include_str!("../../schema/reviews.graphql"),
        }
    }

    /// The position of this subgraph in [`Subgraph::ALL`] (and in counters).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An object some subgraph can resolve fields on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Query,
    Service,
    /// `accounts`' User, by index into [`USERS`].
    AccountUser(usize),
    /// `products`' Product, by index into [`PRODUCTS`].
    Product(usize),
    /// `inventory`'s Product with the `@requires` fields the gateway sent.
    InventoryProduct {
        index: usize,
        price: Option<i64>,
        weight: Option<i64>,
    },
    /// `reviews`' Review, by index into [`REVIEWS`].
    Review(usize),
    /// `reviews`' User stub; `provided` when reached through `Review.author`,
    /// whose `@provides(fields: "username")` makes `username` resolvable here.
    ReviewUser {
        index: usize,
        provided: bool,
    },
    /// `reviews`' Product stub, by index into [`PRODUCTS`].
    ReviewProduct(usize),
}

impl Node {
    pub fn typename(self) -> &'static str {
        match self {
            Node::Query => "Query",
            Node::Service => "_Service",
            Node::AccountUser(_) | Node::ReviewUser { .. } => "User",
            Node::Product(_) | Node::InventoryProduct { .. } | Node::ReviewProduct(_) => "Product",
            Node::Review(_) => "Review",
        }
    }
}

/// A resolved field value.
#[derive(Debug, PartialEq)]
pub enum Out {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'static str),
    Object(Node),
    /// A list of objects; the benchmark's lists never hold scalars or nulls.
    List(Vec<Node>),
}

/// Arguments of one field, already resolved against the request's variables.
pub trait Args {
    fn int(&self, name: &str) -> Option<i64>;
    fn string(&self, name: &str) -> Option<&str>;
}

/// Why a field could not be resolved; becomes a GraphQL error.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldError(pub String);

impl Subgraph {
    /// Resolves `field` on `node`. `_entities`, `_service` and `__typename`
    /// are the executor's business, not this function's.
    pub fn resolve(self, node: Node, field: &str, args: &dyn Args) -> Result<Out, FieldError> {
        let out = match (self, node, field) {
            (Subgraph::Accounts, Node::Query, "me") => Out::Object(Node::AccountUser(0)),
            (Subgraph::Accounts, Node::Query, "user") => match args.string("id").and_then(data::user_index) {
                Some(i) => Out::Object(Node::AccountUser(i)),
                None => Out::Null,
            },
            (Subgraph::Accounts, Node::Query, "users") => Out::List((0..USERS.len()).map(Node::AccountUser).collect()),
            (Subgraph::Accounts, Node::AccountUser(i), _) => {
                let user = &USERS[i];
                match field {
                    "id" => Out::Str(user.id),
                    "name" => Out::Str(user.name),
                    "username" => Out::Str(user.username),
                    "birthday" => Out::Int(user.birthday),
                    _ => return Err(unknown(node, field)),
                }
            }

            (Subgraph::Products, Node::Query, "topProducts") => {
                let first = args.int("first").unwrap_or(5).clamp(0, PRODUCTS.len() as i64) as usize;
                Out::List((0..first).map(Node::Product).collect())
            }
            (Subgraph::Products, Node::Product(i), _) => {
                let product = &PRODUCTS[i];
                match field {
                    "upc" => Out::Str(product.upc),
                    "name" => Out::Str(product.name),
                    "price" => Out::Int(product.price),
                    "weight" => Out::Int(product.weight),
                    _ => return Err(unknown(node, field)),
                }
            }

            (Subgraph::Inventory, Node::InventoryProduct { index, price, weight }, _) => match field {
                "upc" => Out::Str(PRODUCTS[index].upc),
                "inStock" => Out::Bool(PRODUCTS[index].in_stock),
                "shippingEstimate" => data::shipping_estimate(price, weight).map_or(Out::Null, Out::Int),
                "price" => price.map_or(Out::Null, Out::Int),
                "weight" => weight.map_or(Out::Null, Out::Int),
                _ => return Err(unknown(node, field)),
            },

            (Subgraph::Reviews, Node::Review(i), _) => {
                let review = &REVIEWS[i];
                match field {
                    "id" => Out::Str(review.id),
                    "body" => Out::Str(review.body),
                    "product" => data::product_index(review.product_upc)
                        .map_or(Out::Null, |p| Out::Object(Node::ReviewProduct(p))),
                    "author" => Out::Object(Node::ReviewUser { index: data::AUTHOR, provided: true }),
                    _ => return Err(unknown(node, field)),
                }
            }
            (Subgraph::Reviews, Node::ReviewUser { index, provided }, _) => match field {
                "id" => Out::Str(USERS[index].id),
                // Outside `@provides` the reviews subgraph does not know usernames;
                // the benchmark's subgraph answers a placeholder, and so do we.
                "username" => Out::Str(if provided { USERS[index].username } else { "user" }),
                "reviews" => Out::List(data::USER_REVIEWS.map(Node::Review).collect()),
                _ => return Err(unknown(node, field)),
            },
            (Subgraph::Reviews, Node::ReviewProduct(i), _) => match field {
                "upc" => Out::Str(PRODUCTS[i].upc),
                "reviews" => Out::List(data::product_reviews(PRODUCTS[i].upc).map(Node::Review).collect()),
                _ => return Err(unknown(node, field)),
            },

            _ => return Err(unknown(node, field)),
        };
        Ok(out)
    }

    /// Turns one `_entities` representation into an object of this subgraph,
    /// or `None` when the subgraph does not know it.
    pub fn entity(self, representation: &Json) -> Option<Node> {
        let typename = representation.get("__typename")?.as_str()?;
        let key = |name: &str| representation.get(name).and_then(Json::as_str);
        match (self, typename) {
            (Subgraph::Accounts, "User") => data::user_index(key("id")?).map(Node::AccountUser),
            (Subgraph::Products, "Product") => data::product_index(key("upc")?).map(Node::Product),
            (Subgraph::Inventory, "Product") => {
                let index = data::product_index(key("upc")?)?;
                let int = |name: &str| representation.get(name).and_then(Json::as_i64);
                Some(Node::InventoryProduct { index, price: int("price"), weight: int("weight") })
            }
            (Subgraph::Reviews, "Review") => data::review_index(key("id")?).map(Node::Review),
            (Subgraph::Reviews, "User") => {
                data::user_index(key("id")?).map(|index| Node::ReviewUser { index, provided: false })
            }
            (Subgraph::Reviews, "Product") => data::product_index(key("upc")?).map(Node::ReviewProduct),
            _ => None,
        }
    }
}

fn unknown(node: Node, field: &str) -> FieldError {
    FieldError(format!("Cannot query field \"{field}\" on type \"{}\".", node.typename()))
}
