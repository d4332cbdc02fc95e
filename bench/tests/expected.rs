//! The checked-in expected response is the one built from the data, and it
//! has the shape and size of the public benchmark's TestQuery answer.

use gatehouse_bench::compare::first_difference;
use gatehouse_bench::expected::{request_body, test_query_response, EXPECTED_JSON, TEST_QUERY};

#[test]
fn the_checked_in_expected_response_matches_the_data() {
    let checked_in: serde_json::Value = serde_json::from_str(EXPECTED_JSON).unwrap();
    assert_eq!(
        first_difference(&test_query_response(), &checked_in),
        None,
        "run `cargo run -p gatehouse-bench -- expected --write`"
    );
}

#[test]
fn the_expected_response_is_about_88_kb_with_six_users_and_five_top_products() {
    let response = test_query_response();
    let size = serde_json::to_string(&response).unwrap().len();
    assert!((85_000..90_000).contains(&size), "{size} bytes");
    assert_eq!(response["data"]["users"].as_array().unwrap().len(), 6);
    assert_eq!(response["data"]["topProducts"].as_array().unwrap().len(), 5);
    // users → reviews → product → reviews → author → reviews → product
    let deep = &response["data"]["users"][0]["reviews"][0]["product"]["reviews"][0]["author"]["reviews"][1]["product"];
    assert_eq!(deep["name"], "Table");
    assert_eq!(deep["shippingEstimate"], 50);
}

#[test]
fn the_request_body_names_the_test_query() {
    let body: serde_json::Value = serde_json::from_str(&request_body()).unwrap();
    assert_eq!(body["operationName"], "TestQuery");
    assert_eq!(body["query"], TEST_QUERY);
    assert!(TEST_QUERY.contains("query TestQuery"));
}
