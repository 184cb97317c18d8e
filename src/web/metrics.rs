//! Request counts and latencies per route, in Prometheus' text format at `/metrics`.
//! Labels are route patterns (`/invite/{token}`), never raw paths, and one of the standard
//! methods or `OTHER`, never the raw method: no secret and no unbounded set of label
//! values reaches the output, whatever clients send.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    /// Observations at or below each bound of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Series>>,
}

/// Methods that get a label of their own; every other method counts as `OTHER`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The label for a request's method: a bounded set, whatever the client sent.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// The label for a request's route: the pattern it matched in the route table (a bounded
/// set), or one label for every request that matched none.
pub fn route_label(pattern: Option<String>) -> String {
    pattern.unwrap_or_else(|| UNMATCHED.into())
}

pub const UNMATCHED: &str = "(unmatched)";

impl Metrics {
    /// Counts one answered request. `method` and `route` are reduced to their labels here
    /// as well, so no caller can grow the series by passing raw values.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let series = latency
                .entry((method.to_string(), route.to_string()))
                .or_default();
            series.count += 1;
            series.sum += seconds;
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    series.buckets[i] += 1;
                }
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP http_requests_total HTTP requests answered, by route pattern and status.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
        }
        out.push_str("# HELP http_request_duration_seconds Time to answer, by route pattern.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for ((method, route), s) in latency.iter() {
                let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
                for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                    let _ = writeln!(
                        out,
                        "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    s.count
                );
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_sum{{{labels}}} {}",
                    s.sum
                );
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_count{{{labels}}} {}",
                    s.count
                );
            }
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_in_text_format() {
        let m = Metrics::default();
        m.observe("GET", "/login", 200, 0.003);
        m.observe("GET", "/login", 200, 0.2);
        m.observe("POST", "/invite/{token}", 404, 0.02);
        let text = m.render();
        assert!(
            text.contains("http_requests_total{method=\"GET\",route=\"/login\",status=\"200\"} 2")
        );
        assert!(text.contains(
            "http_request_duration_seconds_bucket{method=\"GET\",route=\"/login\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "http_request_duration_seconds_bucket{method=\"GET\",route=\"/login\",le=\"0.25\"} 2"
        ));
        assert!(
            text.contains("http_request_duration_seconds_count{method=\"GET\",route=\"/login\"} 2")
        );
        assert!(text.contains("route=\"/invite/{token}\""));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Metrics::default();
        for i in 0..100 {
            m.observe(&format!("FAKE{i}"), "/login", 405, 0.001);
        }
        m.observe("get", "/login", 200, 0.001);
        m.observe("PATCH", "/login", 200, 0.001);
        let text = m.render();
        assert!(
            text.contains(
                "http_requests_total{method=\"OTHER\",route=\"/login\",status=\"405\"} 100"
            )
        );
        assert!(!text.contains("FAKE"));
        assert!(text.contains("method=\"PATCH\""));
        assert!(
            text.contains(
                "http_requests_total{method=\"OTHER\",route=\"/login\",status=\"200\"} 1"
            ),
            "methods are case-sensitive: `get` is not GET"
        );
        assert_eq!(route_label(None), UNMATCHED);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
