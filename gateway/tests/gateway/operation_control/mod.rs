//! Operation control end to end: progressive override, persisted documents,
//! demand control, header rules and rate limits, each against real HTTP
//! subgraphs and a real gateway, one module per feature.

mod demand_control;
mod header_rules;
mod persisted_documents;
mod progressive_override;
mod rate_limits;
mod store_faults;
