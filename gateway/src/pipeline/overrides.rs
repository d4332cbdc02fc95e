//! Progressive override: `@override(label: "percent(N)")` moves a field to
//! its new subgraph for N % of operations, and a custom label moves it when
//! configuration switches that label on (`GATEWAY_OVERRIDE_LABELS`).
//!
//! Each request draws a number in [0, 100) once. What a plan depends on is
//! only which of the supergraph's percentages lie above the draw, so the
//! draw is reduced to a [`Draw`]: the count of percentages at or below it.
//! Prepared operations and plans are cached per draw, so a supergraph with
//! k distinct percentages has at most k + 1 plans per operation, and one
//! without any has exactly one, as before.

use std::collections::HashSet;

use hive_router_query_planner::graph::{PlannerOverrideContext, PERCENTAGE_SCALE_FACTOR};

/// The override labels of one supergraph, as this gateway applies them.
#[derive(Debug, Clone, Default)]
pub struct OverrideLabels {
    /// The distinct `percent(N)` labels, scaled as the planner stores them
    /// (N × 10⁸), ascending.
    percentages: Vec<u64>,
    /// The custom labels configuration switches on.
    active: HashSet<String>,
}

/// Which side of each percentage one request fell on: how many of the
/// supergraph's percentages are at or below its draw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Draw(u32);

/// The scaled size of the range a draw is taken from: 100 %.
const HUNDRED_PERCENT: u64 = 100 * PERCENTAGE_SCALE_FACTOR;

impl OverrideLabels {
    /// The labels `percentages` (scaled, in any order) and the configured
    /// custom labels that are on.
    pub fn new(percentages: impl IntoIterator<Item = u64>, active: &[String]) -> Self {
        let mut percentages: Vec<u64> = percentages.into_iter().collect();
        percentages.sort_unstable();
        percentages.dedup();
        Self { percentages, active: active.iter().cloned().collect() }
    }

    /// One request's draw. Free when the supergraph has no percentage label.
    pub fn draw(&self) -> Draw {
        if self.percentages.is_empty() {
            return Draw::default();
        }
        self.draw_at(rand::random_range(0..HUNDRED_PERCENT))
    }

    /// The draw for the scaled value `value`.
    fn draw_at(&self, value: u64) -> Draw {
        Draw(self.percentages.partition_point(|&p| p <= value) as u32)
    }

    /// What the planner needs for a draw: the custom labels on, and a value
    /// that falls where the draw did (the largest percentage at or below it,
    /// or 0), so that every request with the same draw gets the same plan.
    pub fn context(&self, draw: Draw) -> PlannerOverrideContext {
        let value = match draw.0 as usize {
            0 => 0,
            n => self.percentages.get(n - 1).copied().unwrap_or(HUNDRED_PERCENT),
        };
        PlannerOverrideContext::new(self.active.clone(), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn percent(n: u64) -> u64 {
        n * PERCENTAGE_SCALE_FACTOR
    }

    #[test]
    fn a_draw_counts_the_percentages_at_or_below_it() {
        let labels = OverrideLabels::new([percent(30), percent(5), percent(30)], &[]);
        assert_eq!(labels.draw_at(0), Draw(0));
        assert_eq!(labels.draw_at(percent(5) - 1), Draw(0));
        assert_eq!(labels.draw_at(percent(5)), Draw(1));
        assert_eq!(labels.draw_at(percent(29)), Draw(1));
        assert_eq!(labels.draw_at(percent(30)), Draw(2));
        assert_eq!(labels.draw_at(HUNDRED_PERCENT - 1), Draw(2));
    }

    #[test]
    fn the_context_of_a_draw_falls_on_the_same_side_of_every_percentage() {
        let labels = OverrideLabels::new([percent(30), percent(5)], &["beta".to_owned()]);
        for value in [0, percent(3), percent(5), percent(17), percent(30), percent(99)] {
            let context = labels.context(labels.draw_at(value));
            for p in [percent(5), percent(30)] {
                assert_eq!(context.is_in_range(&p), value < p, "value {value}, label {p}");
            }
            assert!(context.is_flag_active("beta"));
            assert!(!context.is_flag_active("gamma"));
        }
    }

    #[test]
    fn without_percentages_every_request_draws_the_same() {
        let labels = OverrideLabels::new([], &[]);
        assert!((0..100).all(|_| labels.draw() == Draw(0)));
    }

    #[test]
    fn draws_spread_over_the_range() {
        let labels = OverrideLabels::new([percent(50)], &[]);
        let above = (0..2000).filter(|_| labels.draw() == Draw(1)).count();
        // Binomial(2000, 0.5): the mean 1000, six standard deviations is 134.
        assert!((866..=1134).contains(&above), "{above} of 2000 draws at or above 50 %");
    }
}
