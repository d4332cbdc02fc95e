//! Demand control end to end: the shop supergraph with `@cost` and
//! `@listSize`, estimated before any subgraph call, refused in `enforce`
//! mode, recorded in `measure` mode, the costs in `extensions` when asked.

use gatehouse_gateway::cost::Mode;
use serde_json::{json, Value};

use crate::common::shop::Shop;
use crate::common::{fixture, GatewayBuilder, TestGateway};

/// The shop supergraph with cost directives: `topProducts` sized by
/// `first`, three reviews assumed per product, `inStock` weighing 4.
fn priced_shop_sdl() -> String {
    let sdl = fixture("shop/supergraph.graphql")
        .replacen(
            "@link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY)",
            "@link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY) \
             @link(url: \"https://specs.apollo.dev/cost/v0.1\", import: [\"@cost\", \"@listSize\"])",
            1,
        )
        .replacen(
            "topProducts(first: Int = 5): [Product!]! @join__field(graph: PRODUCTS)",
            "topProducts(first: Int = 5): [Product!]! @join__field(graph: PRODUCTS) @listSize(slicingArguments: [\"first\"])",
            1,
        )
        .replacen(
            "inStock: Boolean! @join__field(graph: INVENTORY)",
            "inStock: Boolean! @join__field(graph: INVENTORY) @cost(weight: 4)",
            1,
        )
        .replacen(
            "  reviews: [Review!]! @join__field(graph: REVIEWS)\n}\n\ntype Dimensions",
            "  reviews: [Review!]! @join__field(graph: REVIEWS) @listSize(assumedSize: 3)\n}\n\ntype Dimensions",
            1,
        );
    let definitions = "directive @cost(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR\n\
         directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION\n";
    assert_eq!(sdl.matches("@listSize(").count(), 2, "the fixture changed shape");
    format!("{definitions}{sdl}")
}

async fn gateway(shop: &Shop, mode: Mode) -> TestGateway {
    let builder = [&shop.accounts, &shop.products, &shop.inventory, &shop.reviews]
        .into_iter()
        .fold(GatewayBuilder::new(priced_shop_sdl()), |builder, subgraph| builder.subgraph(subgraph));
    builder
        .config(move |c| {
            c.demand_control.mode = mode;
            c.demand_control.max_cost = 1000;
        })
        .start()
        .await
}

const QUERY: &str = "query Top($n: Int) { topProducts(first: $n) { upc inStock reviews { body } } }";

fn top(n: i64, ask: bool) -> Value {
    let mut body = json!({ "query": QUERY, "variables": { "n": n } });
    if ask {
        body["extensions"] = json!({ "cost": true });
    }
    body
}

#[tokio::test]
async fn enforce_refuses_an_expensive_operation_before_any_subgraph_call() {
    let shop = Shop::start().await;
    let gateway = gateway(&shop, Mode::Enforce).await;

    // 2 products × (1 + inStock 4 + 3 reviews × 1) = 16.
    let (status, body) = gateway.post_json(top(2, true)).await;
    assert_eq!(status, 200, "{body}");
    let cost = &body["extensions"]["cost"];
    assert_eq!(cost["estimated"], 16.0, "{body}");
    assert_eq!((cost["max"].clone(), cost["mode"].clone()), (json!(1000), json!("enforce")));
    // The actual cost counts what came back: each product 1 + 4, each review 1.
    let products = body["data"]["topProducts"].as_array().unwrap();
    let reviews: usize = products.iter().map(|p| p["reviews"].as_array().unwrap().len()).sum();
    assert_eq!(cost["actual"], (products.len() * 5 + reviews) as f64, "{body}");

    // Not asked: no extensions.
    let (_, quiet) = gateway.post_json(top(2, false)).await;
    assert!(quiet.get("extensions").is_none(), "{quiet}");

    // 200 × 8 = 1600 > 1000: refused, nothing sent to a subgraph.
    let before = shop.requests();
    let (status, refused) = gateway.post_json(top(200, false)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "COST_ESTIMATED_TOO_EXPENSIVE");
    assert_eq!(refused["errors"][0]["extensions"]["cost"]["estimated"], 1600.0);
    assert_eq!(shop.requests(), before, "a refused operation calls no subgraph");

    let metrics = gateway.metrics().await;
    for name in ["gateway_operation_cost_estimated", "gateway_operation_cost_actual"] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(metrics.contains("gateway_operation_cost_exceeded_total{mode=\"enforce\"}"));
}

#[tokio::test]
async fn measure_records_but_refuses_nothing() {
    let shop = Shop::start().await;
    let gateway = gateway(&shop, Mode::Measure).await;
    let (status, body) = gateway.post_json(top(200, true)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["extensions"]["cost"]["estimated"], 1600.0);
    assert_eq!(body["extensions"]["cost"]["mode"], "measure");
    assert!(gateway.metrics().await.contains("gateway_operation_cost_exceeded_total{mode=\"measure\"}"));
}

#[tokio::test]
async fn off_computes_nothing_and_says_nothing() {
    let shop = Shop::start().await;
    let gateway = gateway(&shop, Mode::Off).await;
    assert!(gateway.gateway.store.current().unwrap().cost.is_none());
    let (status, body) = gateway.post_json(top(200, true)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("extensions").is_none(), "{body}");
}
