//! What a command fails with, and how it is shown.

/// Error of a command, printed with its chain of causes.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `e` and its sources, joined by `: `.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
