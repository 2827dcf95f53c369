//! What a command fails with, and how it is shown.

pub(crate) use saas_core::error::chain;

/// Error of a command, printed with its chain of causes.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
