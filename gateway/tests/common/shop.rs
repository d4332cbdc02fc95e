//! The "shop" test supergraph: accounts, products, inventory and reviews,
//! written with async-graphql. Its composed supergraph is checked in under
//! `tests/fixtures/shop/` (see `tests/fixtures/compose.mjs`).
//!
//! Data: users u1 (Ada), u2 (Grace) and u3 (whose `name` and `email`
//! resolvers fail); products p1..p3; one book; five reviews, two by u1, one
//! without an author, one by u3.

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

use super::{fixture, GatewayBuilder, TestGateway, TestSubgraph};

pub mod accounts {
    use async_graphql::{Error, Object, Result, ID};

    #[derive(Clone)]
    pub struct User {
        pub id: &'static str,
        pub name: &'static str,
        pub username: &'static str,
    }

    pub const USERS: [User; 3] = [
        User { id: "u1", name: "Ada", username: "ada" },
        User { id: "u2", name: "Grace", username: "grace" },
        User { id: "u3", name: "Broken", username: "broken" },
    ];

    fn find(id: &str) -> Option<User> {
        USERS.iter().find(|u| u.id == id).cloned()
    }

    #[Object]
    impl User {
        async fn id(&self) -> ID {
            ID(self.id.into())
        }
        async fn name(&self) -> Result<Option<&str>> {
            if self.id == "u3" {
                return Err(Error::new("name service unavailable"));
            }
            Ok(Some(self.name))
        }
        async fn username(&self) -> &str {
            self.username
        }
        async fn email(&self) -> Result<String> {
            if self.id == "u3" {
                return Err(Error::new("email is locked"));
            }
            Ok(format!("{}@example.com", self.username))
        }
        async fn secret(&self) -> &str {
            "do not expose"
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn me(&self) -> Option<User> {
            find("u1")
        }
        async fn users(&self) -> Vec<User> {
            USERS.to_vec()
        }
        async fn user(&self, id: ID) -> Option<User> {
            find(&id)
        }
        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> Option<User> {
            find(&id)
        }
    }
}

pub mod products {
    use async_graphql::{Object, SimpleObject, Union};

    #[derive(Clone, SimpleObject)]
    pub struct Dimensions {
        pub size: &'static str,
        pub weight: f64,
    }

    #[derive(Clone, SimpleObject)]
    pub struct Product {
        pub upc: &'static str,
        pub name: &'static str,
        pub price: i32,
        pub dimensions: Dimensions,
    }

    #[derive(Clone, SimpleObject)]
    pub struct Book {
        pub isbn: &'static str,
        pub title: &'static str,
    }

    #[derive(Clone, Union)]
    pub enum SearchResult {
        Product(Product),
        Book(Book),
    }

    pub fn products() -> Vec<Product> {
        vec![
            Product { upc: "p1", name: "Table", price: 100, dimensions: Dimensions { size: "L", weight: 10.0 } },
            Product { upc: "p2", name: "Chair", price: 50, dimensions: Dimensions { size: "M", weight: 2.5 } },
            Product { upc: "p3", name: "Lamp", price: 20, dimensions: Dimensions { size: "S", weight: 1.0 } },
        ]
    }

    fn book() -> Book {
        Book { isbn: "b1", title: "Dune" }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn top_products(&self, #[graphql(default = 5)] first: i32) -> Vec<Product> {
            products().into_iter().take(first.max(0) as usize).collect()
        }
        async fn product(&self, upc: String) -> Option<Product> {
            products().into_iter().find(|p| p.upc == upc)
        }
        async fn search(&self, term: String) -> Vec<SearchResult> {
            let _ = term;
            vec![
                SearchResult::Product(products()[0].clone()),
                SearchResult::Book(book()),
                SearchResult::Product(products()[1].clone()),
            ]
        }
        #[graphql(entity)]
        async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
            products().into_iter().find(|p| p.upc == upc)
        }
        #[graphql(entity)]
        async fn find_book_by_isbn(&self, isbn: String) -> Option<Book> {
            (isbn == "b1").then(book)
        }
    }
}

pub mod inventory {
    use async_graphql::{Error, InputObject, Object, Result};

    #[derive(InputObject)]
    pub struct DimensionsInput {
        pub size: Option<String>,
        pub weight: Option<f64>,
    }

    pub struct Product {
        upc: String,
        price: Option<i32>,
        weight: Option<f64>,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }
        async fn in_stock(&self) -> bool {
            self.upc != "p2"
        }
        /// Free for expensive products, otherwise twice the weight.
        async fn shipping_estimate(&self) -> Result<i32> {
            match (self.price, self.weight) {
                (Some(price), _) if price > 60 => Ok(0),
                (Some(_), Some(weight)) => Ok((weight * 2.0).round() as i32),
                _ => Err(Error::new("price and dimensions.weight are required")),
            }
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_product_by_upc(
            &self,
            #[graphql(key)] upc: String,
            price: Option<i32>,
            dimensions: Option<DimensionsInput>,
        ) -> Product {
            Product { upc, price, weight: dimensions.and_then(|d| d.weight) }
        }
    }
}

pub mod reviews {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::{Context, Object, ID};

    #[derive(Clone)]
    pub struct Review {
        pub id: &'static str,
        pub body: &'static str,
        pub author: Option<&'static str>,
        pub product: &'static str,
    }

    pub const REVIEWS: [Review; 5] = [
        Review { id: "r1", body: "Great table", author: Some("u1"), product: "p1" },
        Review { id: "r2", body: "Wobbly", author: Some("u2"), product: "p1" },
        Review { id: "r3", body: "Comfy", author: Some("u1"), product: "p2" },
        Review { id: "r4", body: "Anonymous", author: None, product: "p3" },
        Review { id: "r5", body: "Broken author", author: Some("u3"), product: "p2" },
    ];

    fn username(id: &str) -> &'static str {
        match id {
            "u1" => "ada",
            "u2" => "grace",
            _ => "broken",
        }
    }

    pub struct User {
        id: String,
    }

    #[Object]
    impl User {
        async fn id(&self) -> ID {
            ID(self.id.clone())
        }
        async fn username(&self) -> &'static str {
            username(&self.id)
        }
        async fn reviews(&self) -> Vec<Review> {
            REVIEWS.iter().filter(|r| r.author == Some(self.id.as_str())).cloned().collect()
        }
    }

    pub struct Product {
        upc: String,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }
        async fn reviews(&self) -> Vec<Review> {
            REVIEWS.iter().filter(|r| r.product == self.upc).cloned().collect()
        }
    }

    #[Object]
    impl Review {
        async fn id(&self) -> ID {
            ID(self.id.into())
        }
        async fn body(&self) -> &str {
            self.body
        }
        async fn author(&self) -> Option<User> {
            self.author.map(|id| User { id: id.into() })
        }
        async fn product(&self) -> Option<Product> {
            Some(Product { upc: self.product.into() })
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn top_reviews(&self, first: Option<i32>) -> Vec<Review> {
            let n = first.map(|n| n.max(0) as usize).unwrap_or(REVIEWS.len());
            REVIEWS.iter().take(n).cloned().collect()
        }
        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> User {
            User { id: id.0 }
        }
        #[graphql(entity)]
        async fn find_product_by_upc(&self, upc: String) -> Product {
            Product { upc }
        }
    }

    pub struct Mutation;

    #[Object]
    impl Mutation {
        async fn add_review(&self, ctx: &Context<'_>, upc: String, body: String) -> Review {
            let counter = ctx.data_unchecked::<AtomicUsize>();
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let id: &'static str = Box::leak(format!("new{n}").into_boxed_str());
            let body: &'static str = Box::leak(body.into_boxed_str());
            let product: &'static str = Box::leak(upc.into_boxed_str());
            Review { id, body, author: Some("u1"), product }
        }
    }
}

/// The four shop subgraphs, running.
pub struct Shop {
    pub accounts: TestSubgraph,
    pub products: TestSubgraph,
    pub inventory: TestSubgraph,
    pub reviews: TestSubgraph,
}

/// The accounts subgraph's schema, to serve some other way (over TLS, say).
pub fn accounts_schema() -> Schema<accounts::Query, EmptyMutation, EmptySubscription> {
    Schema::build(accounts::Query, EmptyMutation, EmptySubscription).enable_federation().finish()
}

impl Shop {
    pub async fn start() -> Self {
        let accounts = accounts_schema();
        let products = Schema::build(products::Query, EmptyMutation, EmptySubscription).enable_federation().finish();
        let inventory = Schema::build(inventory::Query, EmptyMutation, EmptySubscription).enable_federation().finish();
        let reviews = Schema::build(reviews::Query, reviews::Mutation, EmptySubscription)
            .data(std::sync::atomic::AtomicUsize::new(0))
            .enable_federation()
            .finish();
        Self {
            accounts: TestSubgraph::schema("accounts", accounts).await,
            products: TestSubgraph::schema("products", products).await,
            inventory: TestSubgraph::schema("inventory", inventory).await,
            reviews: TestSubgraph::schema("reviews", reviews).await,
        }
    }

    pub fn gateway(&self) -> GatewayBuilder {
        self.gateway_with(&[])
    }

    /// A gateway over the shop with some subgraphs served by `replacements`
    /// instead (matched by name): a failing or hostile stand-in, say.
    pub fn gateway_with(&self, replacements: &[&TestSubgraph]) -> GatewayBuilder {
        [&self.accounts, &self.products, &self.inventory, &self.reviews].into_iter().fold(
            GatewayBuilder::new(fixture("shop/supergraph.graphql")),
            |builder, own| {
                let chosen = replacements.iter().find(|r| r.name == own.name).copied().unwrap_or(own);
                builder.subgraph(chosen)
            },
        )
    }

    /// Total requests the subgraphs received.
    pub fn requests(&self) -> usize {
        self.accounts.recorder.requests()
            + self.products.recorder.requests()
            + self.inventory.recorder.requests()
            + self.reviews.recorder.requests()
    }
}

/// The shop subgraphs and a gateway in front of them.
pub async fn shop() -> (Shop, TestGateway) {
    let shop = Shop::start().await;
    let gateway = shop.gateway().start().await;
    (shop, gateway)
}
