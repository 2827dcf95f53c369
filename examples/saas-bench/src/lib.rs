//! The pieces of the `saas-bench` harness that its scenarios share: where
//! the data lives and what it holds, the server under test and its
//! baseline, a wrk-style HTTP client, and the figures.

pub mod api;
pub mod baseline;
pub mod child;
pub mod client;
pub mod database;
pub mod django;
pub mod django_fixture;
mod error;
pub mod explain;
pub mod fixture;
pub mod fleet;
pub mod measure;
pub mod report;
pub mod server;
pub mod setup;
pub mod storage;

pub use error::{BoxError, Res};
