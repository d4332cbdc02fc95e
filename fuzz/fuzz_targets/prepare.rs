//! Fuzzes the request pipeline up to planning: any UTF-8 input is parsed,
//! validated, normalised and planned against the shop test supergraph and
//! the partial-unions one (whose plans the gateway edits after planning).
//! The pipeline must return a result or an error, never panic, hang or
//! overflow.
//!
//! Run with `cargo +nightly fuzz run prepare corpus/prepare seeds/prepare`
//! from this folder (the seeds are checked in, the corpus is not). The same
//! inputs run on stable, bounded, in `gateway/tests/fuzz_smoke.rs`.

#![no_main]

use std::sync::OnceLock;

use gatehouse_gateway::config::RuntimeConfig;
use gatehouse_gateway::pipeline::prepare;
use gatehouse_gateway::supergraph::Supergraph;
use gatehouse_gateway::GatewayConfig;
use libfuzzer_sys::fuzz_target;

const SUPERGRAPHS: [&str; 2] = [
    include_str!("../../gateway/tests/fixtures/shop/supergraph.graphql"),
    include_str!("../../gateway/tests/fixtures/partial-unions/supergraph.graphql"),
];

fn setup() -> &'static (Vec<Supergraph>, RuntimeConfig) {
    static STATE: OnceLock<(Vec<Supergraph>, RuntimeConfig)> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut config = GatewayConfig::new("unused".into(), "127.0.0.1:0".parse().unwrap());
        // The pass that edits plans after planning is off by default; fuzz it too.
        config.restore_partial_unions = true;
        let runtime = RuntimeConfig::try_from(&config).unwrap();
        let supergraphs = SUPERGRAPHS.iter().map(|sdl| Supergraph::from_sdl(sdl, &runtime).unwrap()).collect();
        (supergraphs, runtime)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (supergraphs, config) = setup();
    // An optional operation name after a NUL byte.
    let (query, name) = match text.split_once('\0') {
        Some((query, name)) => (query, Some(name)),
        None => (text, None),
    };
    for supergraph in supergraphs {
        let _ = prepare(supergraph, config, query, name);
    }
});
