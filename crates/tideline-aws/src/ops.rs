//! Clients for the operator tools (`tideline replay --aws`, `reingest`,
//! `consumer reset --aws`), built from the environment once per command, so
//! the CLI never touches the SDK itself.

/// A DynamoDB client from the environment's configuration.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&crate::load_sdk_config().await)
}

/// An EventBridge client from the environment's configuration.
pub async fn eventbridge_client() -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&crate::load_sdk_config().await)
}

/// Where `PutRecordBatch` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirehoseEndpoint {
    /// Firehose on AWS, configured from the environment.
    Aws,
    /// `tideline up`'s Firehose API at this URL: same wire protocol, no
    /// real credentials or region needed.
    Local(String),
}

/// A Firehose client for `endpoint`.
pub async fn firehose_client(endpoint: &FirehoseEndpoint) -> aws_sdk_firehose::Client {
    match endpoint {
        FirehoseEndpoint::Aws => aws_sdk_firehose::Client::new(&crate::load_sdk_config().await),
        FirehoseEndpoint::Local(url) => {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_firehose::config::Credentials::new(
                    "local", "local", None, None, "tideline",
                ))
                .endpoint_url(url)
                .load()
                .await;
            aws_sdk_firehose::Client::new(&sdk)
        }
    }
}
