//! A recording, programmable transport and a clock that never waits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tideline_client::{
    BatchLimits, CallError, CallResult, Clock, Prepared, RecordError, Transport,
};

/// What the next call does.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Accepts everything.
    Accept,
    /// Fails these positions of the call, retryably.
    FailPositions(Vec<usize>),
    /// Fails the whole call.
    FailCall { retryable: bool },
}

/// Records what every call carried; `accepted` holds what the service took.
#[derive(Default)]
pub struct Recording {
    pub limits: Option<BatchLimits>,
    pub plans: Mutex<VecDeque<Plan>>,
    /// Used when `plans` is empty.
    pub default_plan: Option<Plan>,
    pub calls: Mutex<Vec<Vec<Vec<u8>>>>,
    pub accepted: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Recording {
    pub fn with_plans(plans: Vec<Plan>) -> Self {
        Self {
            plans: Mutex::new(plans.into()),
            ..Self::default()
        }
    }
    pub fn calls(&self) -> Vec<Vec<Vec<u8>>> {
        self.calls.lock().unwrap().clone()
    }
    pub fn accepted_ids(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
}

impl Transport<Prepared> for Recording {
    fn limits(&self) -> BatchLimits {
        self.limits.unwrap_or(BatchLimits::FIREHOSE)
    }
    fn put(&self, batch: &[&Prepared]) -> impl Future<Output = CallResult> + Send {
        self.calls
            .lock()
            .unwrap()
            .push(batch.iter().map(|p| p.bytes.clone()).collect());
        let plan = self
            .plans
            .lock()
            .unwrap()
            .pop_front()
            .or_else(|| self.default_plan.clone())
            .unwrap_or(Plan::Accept);
        let result = match plan {
            Plan::FailCall { retryable } => Err(CallError {
                message: "ServiceUnavailableException: injected".into(),
                retryable,
            }),
            Plan::Accept | Plan::FailPositions(_) => {
                let failing = match &plan {
                    Plan::FailPositions(p) => p.clone(),
                    _ => vec![],
                };
                let mut accepted = self.accepted.lock().unwrap();
                Ok(batch
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        if failing.contains(&i) {
                            Some(RecordError {
                                code: "ServiceUnavailableException: injected".into(),
                                retryable: true,
                            })
                        } else {
                            accepted.push((p.event_id.to_string(), p.bytes.clone()));
                            None
                        }
                    })
                    .collect())
            }
        };
        std::future::ready(result)
    }
}

/// Never waits, so retries run instantly.
#[derive(Default, Clone, Copy)]
pub struct NoWait;

impl Clock for NoWait {
    fn now(&self) -> Duration {
        Duration::ZERO
    }
    fn sleep(&self, _: Duration) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}
