//! `event-responder`: the example consumer. Bound to a rule, it keeps one
//! summary per entity in its own table, applied exactly once and in
//! `sequence` order through [`tideline_consumer::Guard`]:
//! `last_sequence`, `count`, `last_type` and `status`, a small order state
//! machine derived from the event types ([`next_status`]).
//!
//! Environment (crates/tideline-lambdas/env-contract.json):
//! - `TIDELINE_CONSUMER_NAME`: the checkpoints' namespace;
//! - `TIDELINE_CHECKPOINT_TABLE`: a DynamoDB table (`pk`, `sk`), or
//!   `sqlite:<path>` for local mode (`tideline up` with a lambda target);
//! - `TIDELINE_READ_MODEL_TABLE`: a DynamoDB table (`pk` = entity id); with a
//!   SQLite checkpoint store, the name of the table inside that same SQLite
//!   file, so summary and checkpoint commit in one transaction;
//! - `TIDELINE_GAP_POLICY` (`retry` | `accept` | `buffer`, default `retry`),
//!   `TIDELINE_ACCEPT_TEST_EVENTS` (`true` to apply `test` events), `RUST_LOG`.
//!
//! A rebuild (checkpoint reset, then `tideline replay`) starts again at
//! sequence 1: a summary whose `last_sequence` is not below the event's is
//! from the earlier build and is started afresh.

use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use tideline_consumer::{
    ConsumerError, DynamoCheckpoints, GapPolicy, Guard, IntegrationEvent, Outcome,
    SqliteCheckpoints, SqliteWrite,
};

/// The read model of one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The entity.
    pub entity_id: String,
    /// Sequence of the last applied event.
    pub last_sequence: u64,
    /// Events applied.
    pub count: u64,
    /// Type of the last applied event.
    pub last_type: String,
    /// Order status derived from the types: `new` → `placed` → `paid` →
    /// `packed` → `shipped` → `delivered`, or `cancelled` before shipping.
    pub status: String,
    /// `occurred_at` of the last applied event.
    pub last_event_at: String,
}

/// The status after an event of `event_type`; unknown types and moves out of
/// a final state leave it as it is.
pub fn next_status(current: &str, event_type: &str) -> String {
    let final_state = matches!(current, "delivered" | "cancelled");
    let next = match event_type {
        "OrderPlaced" => "placed",
        "OrderPaid" | "PaymentAuthorized" => "paid",
        "OrderPacked" => "packed",
        "OrderShipped" => "shipped",
        "OrderDelivered" => "delivered",
        "OrderCancelled" if current != "shipped" => "cancelled",
        _ => current,
    };
    if final_state { current } else { next }.to_string()
}

/// Applies one event to the entity's summary (pure).
pub fn apply(previous: Option<Summary>, event: &IntegrationEvent<Value>) -> Summary {
    let meta = event.metadata();
    let previous = previous.filter(|s| s.last_sequence < meta.sequence);
    let mut s = previous.unwrap_or_else(|| Summary {
        entity_id: meta.entity_id.clone(),
        status: "new".into(),
        ..Summary::default()
    });
    s.last_sequence = meta.sequence;
    s.count += 1;
    s.last_type = meta.event_type.clone();
    s.status = next_status(&s.status, &meta.event_type);
    s.last_event_at = meta.occurred_at.clone();
    s
}

/// Configuration from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TIDELINE_CONSUMER_NAME`.
    pub consumer_name: String,
    /// `TIDELINE_CHECKPOINT_TABLE`.
    pub checkpoint_table: String,
    /// `TIDELINE_READ_MODEL_TABLE`.
    pub read_model_table: String,
    /// `TIDELINE_GAP_POLICY`.
    pub gap_policy: GapPolicy,
    /// `TIDELINE_ACCEPT_TEST_EVENTS`.
    pub accept_test_events: bool,
}

impl Config {
    /// Reads the variables through `get`; the error names the variable.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("{k} is required and not set"))
        };
        let gap_policy = get("TIDELINE_GAP_POLICY")
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("TIDELINE_GAP_POLICY: {e}"))?;
        let accept_test_events = match get("TIDELINE_ACCEPT_TEST_EVENTS")
            .unwrap_or_default()
            .trim()
        {
            "" | "false" | "0" => false,
            "true" | "1" => true,
            other => {
                return Err(format!(
                    "TIDELINE_ACCEPT_TEST_EVENTS: {other:?} is not true or false"
                ));
            }
        };
        let config = Self {
            consumer_name: required("TIDELINE_CONSUMER_NAME")?,
            checkpoint_table: required("TIDELINE_CHECKPOINT_TABLE")?,
            read_model_table: required("TIDELINE_READ_MODEL_TABLE")?,
            gap_policy,
            accept_test_events,
        };
        if config.sqlite_path().is_some() && !is_identifier(&config.read_model_table) {
            return Err(format!(
                "TIDELINE_READ_MODEL_TABLE: with a sqlite: checkpoint store it names a table in that file; {:?} is not a plain identifier",
                config.read_model_table
            ));
        }
        Ok(config)
    }

    /// The SQLite file, when `TIDELINE_CHECKPOINT_TABLE` is `sqlite:<path>`.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.checkpoint_table
            .strip_prefix("sqlite:")
            .map(PathBuf::from)
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Where checkpoints and summaries live.
#[derive(Debug)]
pub enum Responder {
    /// On AWS.
    Dynamo {
        /// The guard over the checkpoint table.
        guard: Guard<DynamoCheckpoints>,
        /// The read model table.
        table: String,
    },
    /// Locally: one SQLite file.
    Sqlite {
        /// The guard over the SQLite checkpoints.
        guard: Guard<SqliteCheckpoints>,
        /// The read model's table in the same file.
        table: String,
    },
}

impl Responder {
    /// Builds the responder for a configuration: SQLite when the checkpoint
    /// table is `sqlite:<path>`, DynamoDB (with `sdk`) otherwise.
    pub async fn new(config: &Config) -> Result<Self, ConsumerError> {
        if let Some(path) = config.sqlite_path() {
            let store = SqliteCheckpoints::open(&path)?;
            Self::sqlite(config, store)
        } else {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Ok(Self::dynamo(config, aws_sdk_dynamodb::Client::new(&sdk)))
        }
    }

    /// The DynamoDB responder over a client built once.
    pub fn dynamo(config: &Config, client: aws_sdk_dynamodb::Client) -> Self {
        let guard = Guard::new(
            DynamoCheckpoints::new(client, &config.checkpoint_table),
            &config.consumer_name,
        )
        .with_gap_policy(config.gap_policy)
        .accept_test_events(config.accept_test_events);
        Self::Dynamo {
            guard,
            table: config.read_model_table.clone(),
        }
    }

    /// The SQLite responder; creates the read model table.
    pub fn sqlite(config: &Config, store: SqliteCheckpoints) -> Result<Self, ConsumerError> {
        let table = config.read_model_table.clone();
        store
            .with_connection(|c| {
                c.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} (pk TEXT PRIMARY KEY, item TEXT NOT NULL)"
                ))
            })
            .map_err(tideline_consumer::sqlite::sqlite_error)?;
        let guard = Guard::new(store, &config.consumer_name)
            .with_gap_policy(config.gap_policy)
            .accept_test_events(config.accept_test_events);
        Ok(Self::Sqlite { guard, table })
    }

    /// Handles one EventBridge event.
    pub async fn handle(&self, raw: Value) -> Result<Outcome, ConsumerError> {
        match self {
            Self::Sqlite { guard, table } => {
                guard
                    .handle_json(raw, |event: IntegrationEvent<Value>| {
                        let table = table.clone();
                        async move { Ok(sqlite_write(table, event)) }
                    })
                    .await
            }
            Self::Dynamo { guard, table } => {
                let client = guard.store().client();
                guard
                    .handle_json(raw, |event: IntegrationEvent<Value>| async move {
                        let previous = dynamo_summary(client, table, event.entity_id()).await?;
                        let summary = apply(previous, &event);
                        let put = Put::builder()
                            .table_name(table)
                            .set_item(Some(summary_item(&summary)))
                            .build()
                            .map_err(|e| ConsumerError::permanent("dynamodb", e.to_string()))?;
                        Ok(vec![TransactWriteItem::builder().put(put).build()])
                    })
                    .await
            }
        }
    }

    /// The guard's counters.
    pub fn counts(&self) -> tideline_consumer::GuardCounts {
        match self {
            Self::Dynamo { guard, .. } => guard.counts(),
            Self::Sqlite { guard, .. } => guard.counts(),
        }
    }

    /// Every summary (SQLite only; for tests and local inspection).
    pub fn sqlite_summaries(&self) -> Result<Vec<Summary>, ConsumerError> {
        let Self::Sqlite { guard, table } = self else {
            return Ok(Vec::new());
        };
        guard.store().with_connection(|c| {
            let mut stmt = c
                .prepare(&format!("SELECT item FROM {table} ORDER BY pk"))
                .map_err(tideline_consumer::sqlite::sqlite_error)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(tideline_consumer::sqlite::sqlite_error)?;
            let mut out = Vec::new();
            for row in rows {
                let text = row.map_err(tideline_consumer::sqlite::sqlite_error)?;
                out.push(
                    serde_json::from_str(&text)
                        .map_err(|e| ConsumerError::permanent("read model", e.to_string()))?,
                );
            }
            Ok(out)
        })
    }
}

/// The summary update, run inside the checkpoint's SQLite transaction.
fn sqlite_write(table: String, event: IntegrationEvent<Value>) -> SqliteWrite {
    Box::new(move |tx| {
        let err = tideline_consumer::sqlite::sqlite_error;
        let previous: Option<String> = tx
            .query_row(
                &format!("SELECT item FROM {table} WHERE pk = ?1"),
                params![event.entity_id()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let previous = previous.and_then(|t| serde_json::from_str(&t).ok());
        let summary = apply(previous, &event);
        let text = serde_json::to_string(&summary)
            .map_err(|e| ConsumerError::permanent("read model", e.to_string()))?;
        tx.execute(
            &format!("INSERT OR REPLACE INTO {table} (pk, item) VALUES (?1, ?2)"),
            params![event.entity_id(), text],
        )
        .map_err(err)?;
        Ok(())
    })
}

/// The DynamoDB item of a summary (`pk` = entity id).
pub fn summary_item(s: &Summary) -> HashMap<String, V> {
    HashMap::from([
        ("pk".to_string(), V::S(s.entity_id.clone())),
        (
            "last_sequence".to_string(),
            V::N(s.last_sequence.to_string()),
        ),
        ("count".to_string(), V::N(s.count.to_string())),
        ("last_type".to_string(), V::S(s.last_type.clone())),
        ("status".to_string(), V::S(s.status.clone())),
        ("last_event_at".to_string(), V::S(s.last_event_at.clone())),
    ])
}

/// A summary from its DynamoDB item.
pub fn summary_from_item(item: &HashMap<String, V>) -> Summary {
    let text = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Summary {
        entity_id: text("pk"),
        last_sequence: num("last_sequence"),
        count: num("count"),
        last_type: text("last_type"),
        status: text("status"),
        last_event_at: text("last_event_at"),
    }
}

async fn dynamo_summary(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    entity: &str,
) -> Result<Option<Summary>, ConsumerError> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", V::S(entity.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| ConsumerError::retryable("dynamodb", format!("read model GetItem: {e}")))?;
    Ok(out.item.as_ref().map(summary_from_item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_machine() {
        let mut s = "new".to_string();
        for t in [
            "OrderPlaced",
            "OrderPaid",
            "Unknown",
            "OrderShipped",
            "OrderCancelled",
            "OrderDelivered",
            "OrderPlaced",
        ] {
            s = next_status(&s, t);
        }
        assert_eq!(s, "delivered");
        assert_eq!(next_status("placed", "OrderCancelled"), "cancelled");
        assert_eq!(next_status("cancelled", "OrderPaid"), "cancelled");
    }

    #[test]
    fn config_names_the_missing_variable() {
        let err =
            Config::load(|k| (k == "TIDELINE_CONSUMER_NAME").then(|| "c".to_string())).unwrap_err();
        assert!(err.contains("TIDELINE_CHECKPOINT_TABLE"), "{err}");
        let env = |k: &str| match k {
            "TIDELINE_CONSUMER_NAME" => Some("c".into()),
            "TIDELINE_CHECKPOINT_TABLE" => Some("sqlite:/tmp/x.db".into()),
            "TIDELINE_READ_MODEL_TABLE" => Some("bad-name".into()),
            _ => None,
        };
        assert!(
            Config::load(env)
                .unwrap_err()
                .contains("TIDELINE_READ_MODEL_TABLE")
        );
    }

    #[test]
    fn env_contract_lists_exactly_what_config_reads() {
        let text = include_str!("../../tideline-lambdas/env-contract.json");
        let contract: Value = serde_json::from_str(text).unwrap();
        let entry = &contract["event-responder"];
        let names = |k: &str| -> Vec<String> {
            entry[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names("required"),
            [
                "TIDELINE_CONSUMER_NAME",
                "TIDELINE_CHECKPOINT_TABLE",
                "TIDELINE_READ_MODEL_TABLE"
            ]
        );
        assert_eq!(
            names("optional"),
            [
                "TIDELINE_GAP_POLICY",
                "TIDELINE_ACCEPT_TEST_EVENTS",
                "RUST_LOG"
            ]
        );
    }
}
