//! The reference data of the public graphql-gateways-benchmark, kept as plain
//! constants so every subgraph resolves without allocating.
//!
//! The values are the benchmark's own (users, products with their inventory,
//! reviews); responses through any gateway can therefore be compared with the
//! numbers the field publishes for the same workload.

/// An account, as the `accounts` subgraph serves it.
#[derive(Debug)]
pub struct User {
    pub id: &'static str,
    pub name: &'static str,
    pub username: &'static str,
    pub birthday: i64,
}

/// A product: `products` owns name, price and weight; `inventory` owns `in_stock`.
#[derive(Debug)]
pub struct Product {
    pub upc: &'static str,
    pub name: &'static str,
    pub price: i64,
    pub weight: i64,
    pub in_stock: bool,
}

/// A review, as the `reviews` subgraph serves it.
#[derive(Debug)]
pub struct Review {
    pub id: &'static str,
    pub body: &'static str,
    pub product_upc: &'static str,
}

pub const USERS: [User; 6] = [
    User { id: "1", name: "Uri Goldshtein", username: "urigo", birthday: 1234567890 },
    User { id: "2", name: "Dotan Simha", username: "dotansimha", birthday: 1234567890 },
    User { id: "3", name: "Kamil Kisiela", username: "kamilkisiela", birthday: 1234567890 },
    User { id: "4", name: "Arda Tanrikulu", username: "ardatan", birthday: 1234567890 },
    User { id: "5", name: "Gil Gardosh", username: "gilgardosh", birthday: 1234567890 },
    User { id: "6", name: "Laurin Quast", username: "laurin", birthday: 1234567890 },
];

pub const PRODUCTS: [Product; 9] = [
    Product { upc: "1", name: "Table", price: 899, weight: 100, in_stock: true },
    Product { upc: "2", name: "Couch", price: 1299, weight: 1000, in_stock: false },
    Product { upc: "3", name: "Glass", price: 15, weight: 20, in_stock: false },
    Product { upc: "4", name: "Chair", price: 499, weight: 100, in_stock: false },
    Product { upc: "5", name: "TV", price: 1299, weight: 1000, in_stock: true },
    Product { upc: "6", name: "Lamp", price: 6999, weight: 300, in_stock: true },
    Product { upc: "7", name: "Grill", price: 3999, weight: 2000, in_stock: true },
    Product { upc: "8", name: "Fridge", price: 100000, weight: 6000, in_stock: false },
    Product { upc: "9", name: "Sofa", price: 9999, weight: 800, in_stock: true },
];

const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut \
labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex \
ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla \
pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est \
laborum.";
const SED_UT: &str = "Sed ut perspiciatis unde omnis iste natus error sit voluptatem accusantium doloremque \
laudantium, totam rem aperiam, eaque ipsa quae ab illo inventore veritatis et quasi architecto beatae vitae dicta \
sunt explicabo. Nemo enim ipsam voluptatem quia voluptas sit aspernatur aut odit aut fugi";
const SED_QUIA: &str = "sed quia consequuntur magni dolores eos qui ratione voluptatem sequi nesciunt. Neque porro \
quisquam est, qui dolorem ipsum quia dolor sit amet, consectetur, adipisci velit, sed quia non numquam eius modi \
tempora incidunt ut labore et dolore magnam aliquam quaerat voluptatem.";
const UT_ENIM: &str = "Ut enim ad minima veniam, quis nostrum exercitationem ullam corporis suscipit laboriosam, nisi \
ut aliquid ex ea commodi consequatur? Quis autem";
const AT_VERO: &str = "At vero eos et accusamus et iusto odio dignissimos ducimus qui blanditiis praesentium \
voluptatum deleniti atque corrupti quos dolores et quas molestias excepturi sint occaecati cupiditate non provident, \
similique sunt in culpa qui officia deserunt mollitia animi, id est laborum et dolorum fuga. Et harum quidem rerum \
facilis est et expedita distinctio. Nam libero tempore, cum soluta nobis est eligendi optio cumque nihil impedit quo \
minus id quod maxime placeat facere possimus, omnis voluptas assumenda est, omnis dolor repellendus. Temporibus autem \
quibusdam et aut officiis debitis aut rerum necessitatibus saepe eveniet ut et voluptates repudiandae sint et \
molestiae non recusandae. Itaque earum rerum hic tenetur a sapiente delectus, ut aut reiciendis voluptatibus maiores \
alias consequatur aut perferendis doloribus asperiores repellat.";

pub const REVIEWS: [Review; 11] = [
    Review { id: "1", body: LOREM, product_upc: "1" },
    Review { id: "2", body: SED_UT, product_upc: "1" },
    Review { id: "3", body: SED_QUIA, product_upc: "1" },
    Review { id: "4", body: UT_ENIM, product_upc: "1" },
    Review { id: "5", body: LOREM, product_upc: "2" },
    Review { id: "6", body: SED_UT, product_upc: "2" },
    Review { id: "7", body: SED_QUIA, product_upc: "2" },
    Review { id: "8", body: UT_ENIM, product_upc: "2" },
    Review { id: "9", body: UT_ENIM, product_upc: "3" },
    Review { id: "10", body: UT_ENIM, product_upc: "4" },
    Review { id: "11", body: AT_VERO, product_upc: "4" },
];

/// In the benchmark every user's `reviews` (and every review's author's) are
/// the first two reviews, whoever the user is.
pub const USER_REVIEWS: std::ops::Range<usize> = 0..2;

/// Every review's author is the first user; `reviews` provides the username.
pub const AUTHOR: usize = 0;

/// `inventory`'s rule: free shipping above 1000, else half the weight.
pub fn shipping_estimate(price: Option<i64>, weight: Option<i64>) -> Option<i64> {
    match (price, weight) {
        (Some(price), _) if price > 1000 => Some(0),
        (Some(_), Some(weight)) => Some(weight / 2),
        _ => None,
    }
}

pub fn user_index(id: &str) -> Option<usize> {
    USERS.iter().position(|u| u.id == id)
}

pub fn product_index(upc: &str) -> Option<usize> {
    PRODUCTS.iter().position(|p| p.upc == upc)
}

pub fn review_index(id: &str) -> Option<usize> {
    REVIEWS.iter().position(|r| r.id == id)
}

/// The indices of the reviews of one product, in data order.
pub fn product_reviews(upc: &'static str) -> impl Iterator<Item = usize> {
    REVIEWS.iter().enumerate().filter(move |(_, r)| r.product_upc == upc).map(|(i, _)| i)
}
