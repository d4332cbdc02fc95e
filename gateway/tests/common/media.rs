//! The "media" test supergraph: an interface entity owned by `catalog`, an
//! `@interfaceObject` in `ratings`, and a field `@override`n by `studio`.
//! Composed SDL: `tests/fixtures/media/`.

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

use super::{fixture, GatewayBuilder, TestSubgraph};

pub mod catalog {
    use async_graphql::{Interface, Object, SimpleObject, ID};

    #[derive(Clone, SimpleObject)]
    pub struct Book {
        pub id: ID,
        pub title: String,
        pub author: String,
    }

    #[derive(Clone, SimpleObject)]
    pub struct Movie {
        pub id: ID,
        pub title: String,
        /// Overridden by studio; the gateway must not ask catalog for it.
        pub director: String,
    }

    #[derive(Clone, Interface)]
    #[graphql(name = "Media", field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
    pub enum Media {
        Book(Book),
        Movie(Movie),
    }

    pub fn all() -> Vec<Media> {
        vec![
            Media::Book(Book { id: "m1".into(), title: "Dune".into(), author: "Frank Herbert".into() }),
            Media::Movie(Movie { id: "m2".into(), title: "Alien".into(), director: "stale".into() }),
            Media::Movie(Movie { id: "m3".into(), title: "Heat".into(), director: "stale".into() }),
        ]
    }

    fn find(id: &str) -> Option<Media> {
        all().into_iter().find(|m| match m {
            Media::Book(b) => b.id.0 == id,
            Media::Movie(m) => m.id.0 == id,
        })
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn media(&self) -> Vec<Media> {
            all()
        }
        async fn catalog_name(&self) -> &str {
            "catalog"
        }
        #[graphql(entity)]
        async fn find_media_by_id(&self, id: ID) -> Option<Media> {
            find(&id)
        }
        #[graphql(entity)]
        async fn find_book_by_id(&self, id: ID) -> Option<Book> {
            match find(&id) {
                Some(Media::Book(b)) => Some(b),
                _ => None,
            }
        }
        #[graphql(entity)]
        async fn find_movie_by_id(&self, id: ID) -> Option<Movie> {
            match find(&id) {
                Some(Media::Movie(m)) => Some(m),
                _ => None,
            }
        }
    }
}

pub mod ratings {
    use async_graphql::{Object, SimpleObject, ID};

    #[derive(SimpleObject)]
    #[graphql(name = "Media")]
    pub struct MediaObject {
        pub id: ID,
        pub rating: i32,
    }

    fn rating(id: &str) -> i32 {
        match id {
            "m1" => 5,
            "m2" => 4,
            _ => 3,
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn top_rated(&self) -> Vec<MediaObject> {
            ["m2", "m1"].into_iter().map(|id| MediaObject { id: id.into(), rating: rating(id) }).collect()
        }
        async fn catalog_name(&self) -> &str {
            "ratings"
        }
        #[graphql(entity)]
        async fn find_media_by_id(&self, id: ID) -> MediaObject {
            let rating = rating(&id);
            MediaObject { id, rating }
        }
    }
}

pub mod studio {
    use async_graphql::{Object, SimpleObject, ID};

    #[derive(SimpleObject)]
    pub struct Movie {
        pub id: ID,
        pub director: String,
        pub year: i32,
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_movie_by_id(&self, id: ID) -> Movie {
            let (director, year) = match id.as_str() {
                "m2" => ("Ridley Scott", 1979),
                _ => ("Michael Mann", 1995),
            };
            Movie { id, director: director.into(), year }
        }
    }
}

pub struct Media {
    pub catalog: TestSubgraph,
    pub ratings: TestSubgraph,
    pub studio: TestSubgraph,
}

impl Media {
    pub async fn start() -> Self {
        let catalog = Schema::build(catalog::Query, EmptyMutation, EmptySubscription).enable_federation().finish();
        let ratings = Schema::build(ratings::Query, EmptyMutation, EmptySubscription).enable_federation().finish();
        let studio = Schema::build(studio::Query, EmptyMutation, EmptySubscription).enable_federation().finish();
        Self {
            catalog: TestSubgraph::schema("catalog", catalog).await,
            ratings: TestSubgraph::schema("ratings", ratings).await,
            studio: TestSubgraph::schema("studio", studio).await,
        }
    }

    pub fn gateway(&self) -> GatewayBuilder {
        GatewayBuilder::new(fixture("media/supergraph.graphql"))
            .subgraph(&self.catalog)
            .subgraph(&self.ratings)
            .subgraph(&self.studio)
    }
}
