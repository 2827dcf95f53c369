//! [`Patch`]: the change a partial update asks for on a field that may be
//! empty.
//!
//! Fields that can never be empty (a title, a status) are `Option<T>` in the
//! patch commands: `None` keeps them. Fields that can be empty (a due date,
//! an assignee) need a third state, so that "leave it" and "clear it" cannot
//! be confused; a PATCH body says the same with an absent field, `null` and a
//! value.

/// What to do with an optional field of a stored object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Patch<T> {
    /// Leave the field as it is (the default).
    #[default]
    Keep,
    /// Empty the field.
    Clear,
    /// Give the field this value.
    Set(T),
}

impl<T> Patch<T> {
    /// The field's value after the patch, given its value now.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        }
    }

    /// The same change with `f` applied to the value it sets.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(f(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_keeps_clears_or_sets() {
        assert_eq!(Patch::Keep.apply(Some(1)), Some(1));
        assert_eq!(Patch::<i32>::Keep.apply(None), None);
        assert_eq!(Patch::Clear.apply(Some(1)), None);
        assert_eq!(Patch::Set(2).apply(Some(1)), Some(2));
        assert_eq!(Patch::Set(2).apply(None), Some(2));
        assert_eq!(Patch::<String>::default(), Patch::Keep);
        assert_eq!(Patch::Set(2).map(|v| v * 10), Patch::Set(20));
        assert_eq!(Patch::<i32>::Clear.map(|v| v * 10), Patch::Clear);
    }
}
