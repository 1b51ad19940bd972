//! In-memory checkpoints, for tests and examples. The handler's write is a
//! closure over a key-value map, run under the same lock as the checkpoint
//! update, so it is atomic with it.

use crate::checkpoint::{Checkpoint, CheckpointStore, CheckpointUpdate};
use crate::error::ConsumerError;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// A handler's write against the in-memory table.
pub type MemoryWrite = Box<dyn FnOnce(&mut BTreeMap<String, Value>) + Send>;

#[derive(Default)]
struct State {
    checkpoints: HashMap<(String, String), Checkpoint>,
    table: BTreeMap<String, Value>,
}

/// In-memory checkpoints and a key-value table for the handler's writes.
#[derive(Default)]
pub struct MemoryCheckpoints {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryCheckpoints")
    }
}

impl MemoryCheckpoints {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the handler's table.
    pub fn table(&self) -> BTreeMap<String, Value> {
        self.lock().table.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CheckpointStore for MemoryCheckpoints {
    type Write = MemoryWrite;

    async fn load(&self, consumer: &str, entity: &str) -> Result<Checkpoint, ConsumerError> {
        Ok(self
            .lock()
            .checkpoints
            .get(&(consumer.to_string(), entity.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    async fn commit(
        &self,
        consumer: &str,
        entity: &str,
        update: CheckpointUpdate,
        write: Option<MemoryWrite>,
    ) -> Result<(), ConsumerError> {
        let mut state = self.lock();
        let key = (consumer.to_string(), entity.to_string());
        let mut cp = state.checkpoints.get(&key).cloned().unwrap_or_default();
        let conflict = ConsumerError::Conflict {
            entity: entity.to_string(),
            expected: update.expected(),
        };
        if cp.last_sequence != update.expected() {
            return Err(conflict);
        }
        match update {
            CheckpointUpdate::Advance {
                to,
                unbuffer,
                accepted_gap,
                ..
            } => {
                cp.last_sequence = to;
                if let Some(s) = unbuffer {
                    cp.buffered.remove(&s);
                }
                if accepted_gap {
                    cp.gaps_accepted += 1;
                }
            }
            CheckpointUpdate::Buffer {
                sequence,
                event,
                max,
                ..
            } => {
                if cp.buffered.len() >= max || cp.buffered.contains_key(&sequence) {
                    return Err(conflict);
                }
                cp.buffered.insert(sequence, event);
            }
        }
        if let Some(w) = write {
            w(&mut state.table);
        }
        state.checkpoints.insert(key, cp);
        Ok(())
    }

    async fn reset(&self, consumer: &str, entity: Option<&str>) -> Result<u64, ConsumerError> {
        let mut state = self.lock();
        let before = state.checkpoints.len();
        state
            .checkpoints
            .retain(|(c, e), _| !(c == consumer && entity.is_none_or(|x| x == e)));
        Ok((before - state.checkpoints.len()) as u64)
    }
}
