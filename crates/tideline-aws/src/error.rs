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
    // The deployment's fault, not the record's: a role missing a grant, a
    // table or key missing or disabled. Retried, the message goes back to its
    // queue and, once an operator fixes the deployment, through; classed
    // permanent it would reject valid records (seen applying the Terraform
    // with a grant dropped).
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "ResourceNotFoundException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
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

/// Classes an SDK error as a [`PortError`], with the SDK error as its
/// source: the message says what an operator needs (operation, code, HTTP
/// status), the source keeps the rest (request id, raw response).
pub fn classify<E>(
    service: &'static str,
    operation: &str,
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let error = match &err {
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
                DisplayChain(&err)
            ),
        ),
        // Timeouts, connection failures and unparseable responses: the
        // request may not have reached the service, or may succeed next time.
        _ => PortError::retryable(service, format!("{operation}: {}", DisplayChain(&err))),
    };
    error.with_source(err)
}

/// Displays an error with its sources, `a: b: c` (the core's, re-exported
/// where the adapters used to define it).
pub use tideline_core::DisplayChain;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_deployment_fault_is_retried_not_blamed_on_the_record() {
        use aws_sdk_dynamodb::error::ErrorMetadata;
        use aws_sdk_dynamodb::operation::query::QueryError;
        use aws_smithy_types::body::SdkBody;
        let raw = aws_sdk_dynamodb::config::http::HttpResponse::new(
            400.try_into().unwrap(),
            SdkBody::empty(),
        );
        let denied = QueryError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not authorized to perform: dynamodb:Query")
                .build(),
        );
        let e = classify("dynamodb", "Query", SdkError::service_error(denied, raw));
        assert_eq!(e.class, tideline_core::ErrorClass::Retryable, "{e}");
    }

    #[test]
    fn the_sdk_error_is_the_source() {
        use aws_sdk_dynamodb::error::ErrorMetadata;
        use aws_sdk_dynamodb::operation::get_item::GetItemError;
        use aws_smithy_types::body::SdkBody;
        let raw = aws_sdk_dynamodb::config::http::HttpResponse::new(
            400.try_into().unwrap(),
            SdkBody::empty(),
        );
        let service = GetItemError::generic(
            ErrorMetadata::builder()
                .code("ValidationException")
                .message("bad key")
                .build(),
        );
        let e = classify("dynamodb", "GetItem", SdkError::service_error(service, raw));
        assert_eq!(e.class, tideline_core::ErrorClass::Permanent);
        assert_eq!(
            e.message,
            "GetItem: ValidationException (HTTP 400): bad key"
        );
        type GetItemSdkError = SdkError<GetItemError, aws_sdk_dynamodb::config::http::HttpResponse>;
        let source = std::error::Error::source(&e).unwrap();
        let sdk = source.downcast_ref::<GetItemSdkError>().unwrap();
        assert_eq!(sdk.code(), Some("ValidationException"));
    }

    #[test]
    fn codes() {
        assert!(is_retryable_code("ProvisionedThroughputExceededException"));
        assert!(is_retryable_code("ThrottlingException"));
        assert!(!is_retryable_code("ValidationException"));
        assert!(!is_retryable_code("MalformedDetail"));
    }
}
