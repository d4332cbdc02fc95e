//! A bounded, deterministic stand-in for the cargo-fuzz target
//! (`fuzz/fuzz_targets/prepare.rs`) that runs on stable in every test run:
//! mutated documents go through parse, validate, normalise and plan, and the
//! pipeline must answer each with a result or an error, never a panic.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};

use gatehouse_gateway::config::RuntimeConfig;
use gatehouse_gateway::pipeline::prepare;
use gatehouse_gateway::supergraph::Supergraph;
use gatehouse_gateway::GatewayConfig;

const SEEDS: &[&str] = &[
    "{ me { id name } }",
    "{ topReviews { body author { name reviews { product { name shippingEstimate } } } } }",
    "query($n: Int = 2) { topProducts(first: $n) { upc ...F } } fragment F on Product { name inStock }",
    r#"{ search(term: "x") { __typename ... on Product { upc reviews { body } } ... on Book { title } } }"#,
    r#"mutation { addReview(upc: "p1", body: "x") { id product { name } } }"#,
    "{ __schema { types { name fields { name } } } }",
    "query($s: Boolean!) { topProducts { upc inStock @include(if: $s) name @skip(if: $s) } }",
    // Found by cargo-fuzz: an unknown `__` field holding an untyped fragment.
    r#"{ __eschm{ search(te: "x") {_ta9e  ...{on types { n ok } } } } }"#,
    "{ __schema { ... { queryType { name } } } }",
];

/// Seeds for the partial-unions supergraph, whose plans the gateway edits
/// after planning (`pipeline::partial_unions`).
const UNION_SEEDS: &[&str] = &[
    "{ rootA { wrapper { actions { __typename ... on Common { label } ... on OnlyA { a detail { note } } ... on OnlyB { b } } } } }",
    "query($w: Boolean!, $n: Int!) { rootC { wrapper { actions { ... on OnlyA @include(if: $w) { excerpt(length: $n) } } } } rootD { wrapper { actions { ... on Priced { id price } } } } }",
    "{ rootB { wrapper { actions { ... on Action { ... on OnlyB { b } ... on OnlyA { a } } } } } }",
];

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "...",
    " on ",
    "Product",
    "User",
    "Book",
    "SearchResult",
    "@skip(if: true)",
    "@include(if: $s)",
    "$s",
    "$n",
    "__typename",
    ":",
    "\"",
    "a: ",
    "me",
    "topProducts",
    "reviews",
    "author",
    "query ",
    "mutation ",
    "fragment F on User { id }",
    "...F",
    "1",
    "null",
    "#",
    "\n",
    "_entities",
    "\\u0000",
    "... on OnlyA { a }",
    "... on Priced { price }",
    "wrapper { actions { __typename } }",
];

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut text: Vec<char> = input.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(text.len() + 1);
        match rng.below(4) {
            0 => {
                let token: Vec<char> = TOKENS[rng.below(TOKENS.len())].chars().collect();
                text.splice(at..at, token);
            }
            1 if !text.is_empty() => {
                let end = (at + rng.below(8)).min(text.len());
                text.drain(at.min(end)..end);
            }
            2 if !text.is_empty() => {
                let start = rng.below(text.len());
                let end = (start + rng.below(16)).min(text.len());
                let copy: Vec<char> = text[start..end].to_vec();
                text.splice(at..at, copy);
            }
            _ => {
                let c = char::from_u32(rng.below(0x80) as u32).unwrap_or(' ');
                text.insert(at, c);
            }
        }
    }
    text.into_iter().collect()
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn mutated_documents_never_panic_the_pipeline() {
    // Like libFuzzer, count panics even when the pipeline contains them: a
    // contained planner panic still means a request got a 500.
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let mut config = GatewayConfig::new("unused".into(), "127.0.0.1:0".parse().unwrap());
    // The pass that edits plans after planning is off by default; fuzz it too.
    config.restore_partial_unions = true;
    let runtime = RuntimeConfig::try_from(&config).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for (fixture, seeds, rounds) in [("shop", SEEDS, 1_500), ("partial-unions", UNION_SEEDS, 500)] {
        let mut accepted = 0;
        let supergraph =
            Supergraph::from_sdl(&common::fixture(&format!("{fixture}/supergraph.graphql")), &runtime).unwrap();
        for i in 0..rounds {
            let seed = seeds[i % seeds.len()];
            let mut input = mutate(&mut rng, seed);
            if rng.below(3) == 0 {
                input = mutate(&mut rng, &input);
            }
            if prepare(&supergraph, &runtime, &input, None).is_ok() {
                accepted += 1;
            }
        }
        // Some mutations stay valid; all of them must have been answered.
        assert!(accepted > 0, "no mutation of the {fixture} seeds stayed valid");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the pipeline panicked (see stderr)");
}
