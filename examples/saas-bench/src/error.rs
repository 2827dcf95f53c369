//! What a benchmark fails with.

/// Any error of a benchmark: it stops the run and is printed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A benchmark step's result.
pub type Res<T> = Result<T, BoxError>;
