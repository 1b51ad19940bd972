//! Locking shared by the stores and the in-memory adapters.
//!
//! A module of its own, below both: `store::slot` and `memory` each lock, and
//! neither should name the other for it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
