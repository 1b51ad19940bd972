//! given / when / then for the pure core's tests, as cqrs-es tests its
//! aggregates: a state, one action on it, and what the action gave.
//!
//! ```text
//! given(state).when(|s| action(s)).then_ok(|out| assertions)
//! ```
//!
//! Only a frame: the state and the action are the test's own (for the append
//! plan, an entity as the store holds it and `plan_append`), and the
//! assertions are plain `assert!`s.

use std::fmt::Debug;

/// The state before the action.
pub(crate) struct Given<S>(S);

/// What the action gave.
pub(crate) struct Then<R>(R);

/// Starts a scenario from `state`.
pub(crate) fn given<S>(state: S) -> Given<S> {
    Given(state)
}

impl<S> Given<S> {
    /// Runs the action on the state.
    pub(crate) fn when<R>(self, action: impl FnOnce(&S) -> R) -> Then<R> {
        Then(action(&self.0))
    }
}

impl<T: Debug, E: Debug + PartialEq> Then<Result<T, E>> {
    /// The action succeeded; `check` looks at what it gave.
    pub(crate) fn then_ok(self, check: impl FnOnce(T)) {
        match self.0 {
            Ok(out) => check(out),
            Err(e) => panic!("expected success, got {e:?}"),
        }
    }

    /// The action failed with exactly `expected`.
    pub(crate) fn then_err(self, expected: E) {
        match self.0 {
            Ok(out) => panic!("expected {expected:?}, got success: {out:?}"),
            Err(e) => assert_eq!(e, expected),
        }
    }
}
