//! The conformance cases: `pub async fn case(fixture: &dyn Fixture)`, each
//! on fresh tenants, asserting on error variants and on what did not change.

mod audit;
mod auth;
mod import;
mod isolation;
mod listing;
mod moves;
mod operator;
mod plans;
mod projects;
mod races;
mod registration;
mod store;
mod takeover;
mod tasks;
mod users;

pub use audit::*;
pub use auth::*;
pub use import::*;
pub use isolation::*;
pub use listing::*;
pub use moves::*;
pub use operator::*;
pub use plans::*;
pub use projects::*;
pub use races::*;
pub use registration::*;
pub use store::*;
pub use takeover::*;
pub use tasks::*;
pub use users::*;
