//! `query-api`: API Gateway HTTP API (payload v2) in front of the query
//! stage, which serves the same routes and JSON as local mode's query API.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::CONTENT_TYPE;
use lambda_runtime::LambdaEvent;
use tideline_stages::EventStore;
use tideline_stages::query::{QueryRequest, QueryResponse, handle_query};

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct State<S> {
    /// The store.
    pub store: S,
}

/// The stage's request for an API Gateway v2 event.
pub fn request(event: &ApiGatewayV2httpRequest) -> QueryRequest {
    let mut params: Vec<(String, String)> = event
        .query_string_parameters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    params.sort();
    QueryRequest {
        method: event.request_context.http.method.as_str().to_string(),
        path: event
            .raw_path
            .clone()
            .or_else(|| event.request_context.http.path.clone())
            .unwrap_or_default(),
        params,
    }
}

/// The API Gateway response for the stage's response.
pub fn response(r: QueryResponse) -> ApiGatewayV2httpResponse {
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(r.status);
    out.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    out.body = Some(Body::Text(r.body.to_string()));
    out.is_base64_encoded = false;
    out
}

/// Handles one HTTP request.
pub async fn handler<S: EventStore>(
    state: &State<S>,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, crate::HandlerError> {
    let req = request(&event.payload);
    Ok(response(handle_query(&state.store, &req).await))
}
