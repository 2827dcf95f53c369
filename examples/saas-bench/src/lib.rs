//! The pieces of the `saas-bench` harness that its scenarios share: where
//! the data lives and what it holds, the server under test and its
//! baseline, a wrk-style HTTP client, and the figures.

pub mod baseline;
pub mod client;
pub mod database;
pub mod explain;
pub mod fixture;
pub mod fleet;
pub mod measure;
pub mod report;
pub mod server;
pub mod setup;
pub mod storage;

/// Any error of a benchmark: it stops the run and is printed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A benchmark step's result.
pub type Res<T> = Result<T, BoxError>;
