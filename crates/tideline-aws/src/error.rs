//! SDK errors, classed for the batch contracts: throttling, 5xx, timeouts and
//! dispatch failures are retryable; validation errors (an item over 400 KB, a
//! malformed request) are permanent.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use tideline_stages::PortError;

/// Error codes that mean "try again later", across SQS, DynamoDB and EventBridge.
pub const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "InternalException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSThrottlingException",
    // DynamoDB TransactWriteItems cancellation reasons.
    "ThrottlingError",
    "TransactionConflict",
    // SQS SendMessageBatch per-entry codes that are the service's fault.
    "AWS.SimpleQueueService.RequestThrottled",
];

/// Whether an error code is retryable.
pub fn is_retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// One entry's result of a PutEvents call (classic or enhanced bus), given
/// its `(ErrorCode, ErrorMessage)`, or `None` when the response had no entry
/// at that position: a missing result may be sent again, an error code is
/// classed by [`is_retryable_code`].
pub fn put_events_entry_result(
    result: Option<(Option<&str>, Option<&str>)>,
) -> Result<(), tideline_stages::EntryFailure> {
    use tideline_core::ErrorClass;
    match result {
        None => Err(tideline_stages::EntryFailure {
            code: "MissingResult".into(),
            message: "PutEvents returned no result for this entry".into(),
            class: ErrorClass::Retryable,
        }),
        Some((None | Some(""), _)) => Ok(()),
        Some((Some(code), message)) => Err(tideline_stages::EntryFailure {
            code: code.to_string(),
            message: message.unwrap_or_default().to_string(),
            class: if is_retryable_code(code) {
                ErrorClass::Retryable
            } else {
                ErrorClass::Permanent
            },
        }),
    }
}

/// The error code of an SDK error, if the service sent one.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(ctx) => ctx.err().code(),
        _ => None,
    }
}

/// Classes an SDK error as a [`PortError`].
pub fn classify<E>(
    service: &'static str,
    operation: &str,
    err: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("Unknown");
            let message = ctx.err().message().unwrap_or_default();
            let status = ctx.raw().status().as_u16();
            let text = format!("{operation}: {code} (HTTP {status}): {message}");
            if is_retryable_code(code) || status >= 500 || status == 429 {
                PortError::retryable(service, text)
            } else {
                PortError::permanent(service, text)
            }
        }
        SdkError::ConstructionFailure(_) => PortError::permanent(
            service,
            format!(
                "{operation}: request could not be built: {}",
                DisplayChain(err)
            ),
        ),
        // Timeouts, connection failures and unparseable responses: the
        // request may not have reached the service, or may succeed next time.
        _ => PortError::retryable(service, format!("{operation}: {}", DisplayChain(err))),
    }
}

/// Displays an error with its sources, `a: b: c`.
pub struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert!(is_retryable_code("ProvisionedThroughputExceededException"));
        assert!(is_retryable_code("ThrottlingException"));
        assert!(!is_retryable_code("ValidationException"));
        assert!(!is_retryable_code("MalformedDetail"));
    }
}
