//! Tails an EventBridge bus, as `lumigo-cli tail-eventbridge-bus` does: a
//! temporary SQS queue, a rule on the bus targeting it (pattern default:
//! every event of the bus's account, `{"account": ["<id>"]}`), and a queue
//! policy letting only that rule send. Everything it creates is deleted
//! before [`tail_bus`] returns: when the caller's stop future resolves (also
//! during set-up), and on failure. `tideline tail --aws` runs it.

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use std::future::Future;
use tideline_core::retry::RetryPolicy;
use tideline_core::{Classify, ErrorClass};

/// The clients a tail uses.
#[derive(Debug, Clone)]
pub struct TailClients {
    /// EventBridge.
    pub events: aws_sdk_eventbridge::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

impl TailClients {
    /// Clients from the environment's configuration.
    pub async fn connect() -> Self {
        let sdk = crate::load_sdk_config().await;
        Self::from_config(&sdk)
    }

    /// Clients from a loaded configuration (the CLI checks its region first).
    pub fn from_config(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            events: aws_sdk_eventbridge::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }
}

/// What the tail tells its caller along the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailNotice<'a> {
    /// Set up: events on `bus` matching `pattern` reach the rule and queue `name`.
    Ready {
        /// The bus.
        bus: &'a str,
        /// The temporary rule's and queue's name.
        name: &'a str,
        /// The rule's pattern.
        pattern: &'a str,
    },
    /// Something went wrong that the tail rides out (it retries, or an
    /// event may be handed over twice).
    Warning(String),
    /// Everything it created is deleted.
    CleanedUp {
        /// The temporary rule's and queue's name.
        name: &'a str,
    },
}

/// The SDK error under a [`TailError`].
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a tail ended with an error, keeping the SDK's or the writer's error as
/// its source (decision record 0019). What it created is deleted first,
/// unless [`TailError::Cleanup`] says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The bus does not exist; nothing was created.
    #[error("no such event bus: {bus}")]
    NoSuchBus {
        /// The bus asked for.
        bus: String,
        /// EventBridge's answer.
        #[source]
        source: Cause,
    },
    /// EventBridge refused the pattern.
    #[error("creating the temporary rule: the pattern was refused")]
    BadPattern(#[source] Cause),
    /// An AWS call failed.
    #[error("{step}")]
    Aws {
        /// What was being done.
        step: String,
        /// The SDK error.
        #[source]
        source: Cause,
    },
    /// AWS answered, but not as needed (no queue ARN, a refused target).
    #[error("{0}")]
    Refused(String),
    /// Handing an event to the caller failed (other than the reader going away).
    #[error("writing output")]
    Output(#[source] std::io::Error),
    /// Some of what the tail created could not be deleted.
    #[error("delete these by hand: {0}")]
    Cleanup(String),
    /// The tail failed, and so did deleting what it created.
    #[error("{error}; and cleaning up: {cleanup}")]
    AndCleanup {
        /// Why the tail failed.
        error: Box<TailError>,
        /// What could not be deleted.
        cleanup: Box<TailError>,
    },
}

/// An AWS call's failure at `step`, with the SDK error as its source.
fn aws(
    step: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> TailError {
    TailError::Aws {
        step: step.into(),
        source: Box::new(source),
    }
}

impl Classify for TailError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::NoSuchBus { .. } | Self::BadPattern(_) | Self::Output(_) => ErrorClass::Permanent,
            Self::Aws { .. } | Self::Refused(_) | Self::Cleanup(_) => ErrorClass::Retryable,
            Self::AndCleanup { error, .. } => error.class(),
        }
    }
}

/// What the tail creates; all of it is deleted on exit.
#[derive(Debug, Default)]
struct Temporary {
    name: String,
    bus: String,
    queue_url: Option<String>,
    rule_created: bool,
    target_added: bool,
}

const TARGET_ID: &str = "tideline-tail";

/// Receive failures in a row that end the tail.
const MAX_RECEIVE_FAILURES: u32 = 5;

fn aws_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    e: &aws_sdk_sqs::error::SdkError<E>,
) -> String {
    let code = e.code().unwrap_or("");
    let message = e.message().unwrap_or("");
    if code.is_empty() && message.is_empty() {
        format!("{what}: {e:?}")
    } else {
        format!("{what}: {code}: {message}")
    }
}

/// Whether handing an event over failed because the reader went away
/// (`tail | head`): a normal end.
fn reader_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Tails `bus` through a temporary queue until `stop` resolves, handing
/// each event's JSON to `on_event` (an error of kind `BrokenPipe` ends the
/// tail normally: the reader went away) and telling `on_notice` what
/// happens along the way.
///
/// `wait_seconds` is the SQS long-poll wait. The temporary rule, target and
/// queue are deleted before this returns, whether it stops, fails or is
/// stopped during set-up.
pub async fn tail_bus(
    clients: &TailClients,
    bus: &str,
    pattern: Option<&str>,
    wait_seconds: i32,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(&str) -> std::io::Result<()>,
    mut on_notice: impl FnMut(TailNotice<'_>),
) -> Result<(), TailError> {
    let mut temp = Temporary {
        name: format!("tideline-tail-{:016x}", rand::random::<u64>()),
        bus: bus.to_string(),
        ..Temporary::default()
    };
    let result = {
        let work = async {
            setup(clients, &mut temp, pattern, &mut on_notice).await?;
            receive(clients, &temp, wait_seconds, &mut on_event, &mut on_notice).await
        };
        tokio::select! {
            r = work => r,
            _ = stop => Ok(()),
        }
    };
    let cleanup = teardown(clients, &temp).await;
    // Only what was created is reported deleted: a tail that failed before
    // creating anything says nothing about cleaning up.
    let created = temp.queue_url.is_some() || temp.rule_created || temp.target_added;
    if cleanup.is_ok() && created {
        on_notice(TailNotice::CleanedUp { name: &temp.name });
    }
    match (result, cleanup) {
        (Err(error), Err(cleanup)) => Err(TailError::AndCleanup {
            error: Box::new(error),
            cleanup: Box::new(cleanup),
        }),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

async fn setup(
    clients: &TailClients,
    temp: &mut Temporary,
    pattern: Option<&str>,
    on_notice: &mut impl FnMut(TailNotice<'_>),
) -> Result<(), TailError> {
    let described = clients
        .events
        .describe_event_bus()
        .name(&temp.bus)
        .send()
        .await
        .map_err(|e| {
            if e.code() == Some("ResourceNotFoundException") {
                TailError::NoSuchBus {
                    bus: temp.bus.clone(),
                    source: Box::new(e),
                }
            } else {
                aws(format!("describing bus {}", temp.bus), e)
            }
        })?;
    let pattern = match pattern {
        Some(p) => p.to_string(),
        None => {
            let arn = described.arn().unwrap_or_default();
            let account = arn
                .split(':')
                .nth(4)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    TailError::Refused(format!(
                        "bus {}: no account id in its ARN {arn:?}; pass --pattern",
                        temp.bus
                    ))
                })?;
            serde_json::json!({ "account": [account] }).to_string()
        }
    };
    let created = clients
        .sqs
        .create_queue()
        .queue_name(&temp.name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "3600")
        .send()
        .await
        .map_err(|e| aws("creating the temporary queue", e))?;
    let url = created.queue_url().unwrap_or_default().to_string();
    temp.queue_url = Some(url.clone());
    let queue_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws("reading the queue ARN", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| TailError::Refused("the temporary queue has no ARN".into()))?;
    temp.rule_created = true;
    let rule = clients
        .events
        .put_rule()
        .name(&temp.name)
        .event_bus_name(&temp.bus)
        .event_pattern(&pattern)
        .description("tideline tail: temporary; deleted when the tail stops")
        .send()
        .await
        .map_err(|e| {
            if e.code() == Some("InvalidEventPatternException") {
                TailError::BadPattern(Box::new(e))
            } else {
                aws("creating the temporary rule", e)
            }
        })?;
    let rule_arn = rule.rule_arn().unwrap_or_default().to_string();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "tideline-tail",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }],
    });
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(|e| aws("setting the queue policy", e))?;
    temp.target_added = true;
    let target = Target::builder()
        .id(TARGET_ID)
        .arn(&queue_arn)
        .build()
        .map_err(|e| aws("target", e))?;
    let added = clients
        .events
        .put_targets()
        .rule(&temp.name)
        .event_bus_name(&temp.bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| aws("adding the queue as the rule's target", e))?;
    if added.failed_entry_count() > 0 {
        let why: Vec<String> = added
            .failed_entries()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.error_code().unwrap_or_default(),
                    f.error_message().unwrap_or_default()
                )
            })
            .collect();
        return Err(TailError::Refused(format!(
            "adding the queue as the rule's target failed: {}",
            why.join("; ")
        )));
    }
    on_notice(TailNotice::Ready {
        bus: &temp.bus,
        name: &temp.name,
        pattern: &pattern,
    });
    Ok(())
}

async fn receive(
    clients: &TailClients,
    temp: &Temporary,
    wait_seconds: i32,
    on_event: &mut impl FnMut(&str) -> std::io::Result<()>,
    on_notice: &mut impl FnMut(TailNotice<'_>),
) -> Result<(), TailError> {
    let url = temp.queue_url.clone().unwrap_or_default();
    let backoff = RetryPolicy::default();
    let mut failures = 0u32;
    loop {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await;
        let messages = match received {
            Ok(r) => {
                failures = 0;
                r.messages.unwrap_or_default()
            }
            Err(e) => {
                failures += 1;
                if failures >= MAX_RECEIVE_FAILURES {
                    return Err(aws("receiving from the temporary queue", e));
                }
                let message = aws_error("receiving from the temporary queue", &e);
                on_notice(TailNotice::Warning(format!("{message}; retrying")));
                tokio::time::sleep(backoff.jittered_delay(failures)).await;
                continue;
            }
        };
        let mut done = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match on_event(m.body().unwrap_or_default()) {
                Ok(()) => {}
                Err(e) if reader_gone(&e) => return Ok(()),
                Err(e) => return Err(TailError::Output(e)),
            }
            if let Some(handle) = m.receipt_handle()
                && let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
            {
                done.push(entry);
            }
        }
        if !done.is_empty()
            && let Err(e) = clients
                .sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(done))
                .send()
                .await
        {
            // Not deleted means handed over again after the visibility
            // timeout; the tail is best effort.
            on_notice(TailNotice::Warning(aws_error(
                "deleting received messages",
                &e,
            )));
        }
    }
}

/// Deletes the target, the rule and the queue; "not found" counts as deleted.
async fn teardown(clients: &TailClients, temp: &Temporary) -> Result<(), TailError> {
    let mut problems = Vec::new();
    let gone = |code: Option<&str>| {
        matches!(
            code,
            Some("ResourceNotFoundException")
                | Some("AWS.SimpleQueueService.NonExistentQueue")
                | Some("QueueDoesNotExist")
        )
    };
    if temp.target_added
        && let Err(e) = clients
            .events
            .remove_targets()
            .rule(&temp.name)
            .event_bus_name(&temp.bus)
            .ids(TARGET_ID)
            .send()
            .await
        && !gone(e.code())
    {
        problems.push(aws_error(
            &format!("removing the target of rule {}", temp.name),
            &e,
        ));
    }
    if temp.rule_created
        && let Err(e) = clients
            .events
            .delete_rule()
            .name(&temp.name)
            .event_bus_name(&temp.bus)
            .send()
            .await
        && !gone(e.code())
    {
        problems.push(aws_error(&format!("deleting rule {}", temp.name), &e));
    }
    if let Some(url) = &temp.queue_url
        && let Err(e) = clients.sqs.delete_queue().queue_url(url).send().await
        && !gone(e.code())
    {
        problems.push(aws_error(&format!("deleting queue {url}"), &e));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TailError::Cleanup(problems.join("; ")))
    }
}
