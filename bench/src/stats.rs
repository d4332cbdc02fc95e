//! Small sums over repeated runs: medians, so one noisy run on a shared
//! machine does not decide a result.

/// The median of `values` (the mean of the middle two for an even count);
/// `None` when there are no values. NaNs are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

/// The median of one field over several runs.
pub fn median_by<T>(runs: &[T], field: impl Fn(&T) -> f64) -> Option<f64> {
    median(&runs.iter().map(field).collect::<Vec<_>>())
}

/// The nearest-rank `q` quantile (0 < q ≤ 1) of ascending `sorted` values:
/// the smallest value with at least `q` of all values at or below it.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `ours / theirs`, or `None` when `theirs` is zero or either is missing.
pub fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    match (ours, theirs) {
        (Some(o), Some(t)) if t != 0.0 => Some(o / t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn no_values_have_no_median_and_nans_are_ignored() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(median(&[f64::NAN, 2.0]), Some(2.0));
    }

    #[test]
    fn median_by_reads_one_field() {
        let runs = [(1, 10.0), (2, 30.0), (3, 20.0)];
        assert_eq!(median_by(&runs, |r| r.1), Some(20.0));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile(&values, 1.0), Some(100));
        assert_eq!(percentile(&[7u64], 0.99), Some(7));
        assert_eq!(percentile(&[1u64, 2, 3], 0.0), Some(1));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }

    #[test]
    fn a_ratio_needs_both_sides_and_a_non_zero_divisor() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
    }
}
