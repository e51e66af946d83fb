//! The status page's numbers, read from the gateway's own metrics registry
//! ([`crate::metrics::Metrics::gather`]): the same samples `/metrics` exports, so the page
//! and Prometheus never disagree. Latency percentiles are estimated from the histograms'
//! buckets the way PromQL's `histogram_quantile` does (linear interpolation inside the
//! bucket holding the rank), so they are as coarse as the buckets (25 µs .. 30 s).

use std::collections::BTreeMap;

use pingora_prometheus::prometheus::proto::{LabelPair, Metric, MetricFamily};
use serde::Serialize;

/// The families of one gather, looked up by name.
pub(super) struct Families(Vec<MetricFamily>);

impl Families {
    pub(super) fn new(families: Vec<MetricFamily>) -> Families {
        Families(families)
    }

    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Metric> {
        self.0
            .iter()
            .filter(move |f| f.name() == name)
            .flat_map(|f| &f.metric)
    }

    /// Every sample of counter `name`: its labels and value (counters here are integers).
    pub(super) fn counters<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (Labels<'a>, u64)> {
        self.samples(name).map(|m| {
            let v = m.counter.value();
            (Labels(&m.label), if v > 0.0 { v as u64 } else { 0 })
        })
    }

    /// Every sample of histogram `name`: its labels and buckets.
    pub(super) fn histograms<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (Labels<'a>, Buckets)> {
        self.samples(name).map(|m| {
            let h = &m.histogram;
            let mut b = Buckets::default();
            for bucket in &h.bucket {
                b.bounds.push(bucket.upper_bound());
                b.cumulative.push(bucket.cumulative_count());
            }
            b.count = h.sample_count();
            (Labels(&m.label), b)
        })
    }
}

/// The labels of one sample.
#[derive(Clone, Copy)]
pub(super) struct Labels<'a>(&'a [LabelPair]);

impl Labels<'_> {
    /// The value of label `name` (empty when absent).
    pub(super) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|l| l.name() == name)
            .map_or("", |l| l.value())
    }
}

/// A histogram's cumulative buckets (the implicit `+Inf` bucket is `count`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Buckets {
    /// Upper bounds in seconds, ascending.
    bounds: Vec<f64>,
    /// Observations at or below each bound.
    cumulative: Vec<u64>,
    /// All observations.
    count: u64,
}

impl Buckets {
    /// Add `other`'s observations (series of one histogram share its bucket layout; a
    /// different layout, which cannot happen here, is ignored rather than mixed).
    pub(super) fn add(&mut self, other: &Buckets) {
        if self.bounds.is_empty() && self.count == 0 {
            *self = other.clone();
        } else if self.bounds == other.bounds {
            for (c, o) in self.cumulative.iter_mut().zip(&other.cumulative) {
                *c += o;
            }
            self.count += other.count;
        }
    }

    /// The `q` quantile (0..=1) in seconds, `None` without observations. Past the last
    /// finite bound the answer is that bound (as `histogram_quantile` does).
    pub(super) fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let Some(i) = self.cumulative.iter().position(|&c| c as f64 >= rank) else {
            return self.bounds.last().copied();
        };
        let upper = self.bounds[i];
        let (lower, below) = match i {
            0 => (0.0_f64.min(upper), 0),
            _ => (self.bounds[i - 1], self.cumulative[i - 1]),
        };
        let inside = self.cumulative[i].saturating_sub(below);
        if inside == 0 {
            return Some(lower);
        }
        Some(lower + (upper - lower) * (rank - below as f64) / inside as f64)
    }

    /// p50, p90 and p99 in milliseconds.
    pub(super) fn percentiles(&self) -> Percentiles {
        let ms = |q| self.quantile(q).map(|s| (s * 1_000_000.0).round() / 1000.0);
        Percentiles {
            samples: self.count,
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
        }
    }
}

/// Latency percentiles in milliseconds (estimates from buckets; `None`: no samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// Requests counted by outcome (the `outcome` label of `mcp_gateway_requests_total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub ok: u64,
    /// Refused by the gateway (`rejected`).
    pub refused: u64,
    /// `upstream_error` and `internal_error`.
    pub errors: u64,
    /// `client_closed`.
    pub client_closed: u64,
}

impl Counts {
    pub(super) fn add(&mut self, outcome: &str, n: u64) {
        self.total += n;
        match outcome {
            "ok" => self.ok += n,
            "rejected" => self.refused += n,
            "client_closed" => self.client_closed += n,
            _ => self.errors += n,
        }
    }

    /// Errors per request (0 with no requests).
    pub fn error_rate(&self) -> f64 {
        ratio(self.errors, self.total)
    }

    /// Refusals per request.
    pub fn refusal_rate(&self) -> f64 {
        ratio(self.refused, self.total)
    }
}

fn ratio(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// Sum counter `name` by the values of `labels` (in that order); rows with a zero total are
/// left out. Sorted by count, largest first, then by key.
pub(super) fn by_labels(f: &Families, name: &str, labels: &[&str]) -> Vec<(Vec<String>, u64)> {
    let mut sums: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for (l, v) in f.counters(name) {
        let key = labels.iter().map(|n| l.get(n).to_string()).collect();
        *sums.entry(key).or_default() += v;
    }
    let mut rows: Vec<_> = sums.into_iter().filter(|(_, v)| *v > 0).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(bounds: &[f64], per_bucket: &[u64], inf: u64) -> Buckets {
        let mut cumulative = Vec::new();
        let mut sum = 0;
        for n in per_bucket {
            sum += n;
            cumulative.push(sum);
        }
        Buckets {
            bounds: bounds.to_vec(),
            cumulative,
            count: sum + inf,
        }
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_holding_the_rank() {
        // 10 observations in (1, 2]: the median is halfway through that bucket.
        let b = buckets(&[1.0, 2.0, 4.0], &[0, 10, 0], 0);
        assert_eq!(b.quantile(0.5), Some(1.5));
        assert_eq!(b.quantile(0.9), Some(1.9));
        // 50 in [0, 1], 50 in (2, 4]: p50 is the top of the first, p99 near 4.
        let b = buckets(&[1.0, 2.0, 4.0], &[50, 0, 50], 0);
        assert_eq!(b.quantile(0.5), Some(1.0));
        assert!((b.quantile(0.99).unwrap() - 3.96).abs() < 1e-9);
        // Everything above the last bound: the last bound (histogram_quantile's answer).
        let b = buckets(&[1.0, 2.0], &[0, 0], 5);
        assert_eq!(b.quantile(0.5), Some(2.0));
        assert_eq!(Buckets::default().quantile(0.5), None);
        assert_eq!(Buckets::default().percentiles().p99, None);
    }

    #[test]
    fn series_add_up_and_percentiles_are_milliseconds() {
        let mut total = Buckets::default();
        total.add(&buckets(&[0.001, 0.002], &[4, 0], 0));
        total.add(&buckets(&[0.001, 0.002], &[0, 4], 0));
        assert_eq!(total.count, 8);
        let p = total.percentiles();
        assert_eq!((p.samples, p.p50), (8, Some(1.0)));
        assert_eq!(p.p99, Some(1.98));
        let mut c = Counts::default();
        for (o, n) in [
            ("ok", 6),
            ("rejected", 2),
            ("upstream_error", 1),
            ("internal_error", 1),
        ] {
            c.add(o, n);
        }
        assert_eq!((c.total, c.errors, c.refused), (10, 2, 2));
        assert!((c.error_rate() - 0.2).abs() < 1e-9);
        assert_eq!(Counts::default().error_rate(), 0.0);
    }
}
