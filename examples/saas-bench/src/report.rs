//! The parts of an HTTP scenario's result that every scenario shares.

use serde_json::{Map, Value, json};

use crate::client::Outcome;
use crate::measure::{load_average, median, round3};
use crate::storage::Env;

/// The fields a result starts with: scenario, backend, routing (on
/// PostgreSQL) and the load average at the start.
pub fn head(scenario: &str, env: &Env) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("scenario".into(), json!(scenario));
    m.insert("backend".into(), json!(env.backend.name()));
    if let Some(pg) = &env.pg {
        m.insert("routing".into(), json!(format!("{:?}", pg.routing())));
    }
    m.insert("load_average_at_start".into(), json!(load_average()));
    m
}

/// Says on stderr when a run had errors, and the first of them.
pub fn check_errors(what: &str, o: &Outcome) {
    if o.errors > 0 {
        eprintln!(
            "{what}: {} errors of {} requests; first: {}",
            o.errors,
            o.requests,
            o.first_error.as_deref().unwrap_or("?")
        );
    }
}

/// Medians over rounds of one variant.
pub fn summary(runs: &[Outcome]) -> Value {
    let rps: Vec<f64> = runs.iter().map(Outcome::rps).collect();
    let p50: Vec<f64> = runs.iter().map(|o| o.p(0.5)).collect();
    let p99: Vec<f64> = runs.iter().map(|o| o.p(0.99)).collect();
    json!({
        "requests_per_s": round3(median(&rps)),
        "p50_ms": round3(median(&p50)),
        "p99_ms": round3(median(&p99)),
        "errors": runs.iter().map(|o| o.errors).sum::<usize>(),
        "rounds_requests_per_s": rps.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
    })
}
