//! Every deployed role allows the calls its code makes (issue 20).
//!
//! Run by `scripts/apply-terraform.sh` after it applied
//! `terraform/examples/complete` to moto: it sets `TIDELINE_DEPLOYED_*` and
//! switched moto's IAM enforcement on (`scripts/moto_roles.py`). Without
//! those variables the test has nothing to check and says so.
//!
//! Each function's handler runs with its own role's credentials (assumed from
//! the role Terraform created), against the resources Terraform created; the
//! harness plays the event source mappings with the same role, as Lambda
//! does. Every SDK operation is recorded by an interceptor, with the
//! resource its client is bound to. Then:
//!
//! 1. no call was denied (moto, enforcement on);
//! 2. static: each recorded operation is allowed by the role's policy as
//!    Terraform deployed it (the state's policy JSON: actions *and*
//!    resources, which moto cannot match; see scripts/moto_roles.py);
//! 3. the recorded list equals `terraform/iam-calls.json`, from which the
//!    least-privilege table of terraform/README.md is generated
//!    (`least_privilege_table.rs` checks that). `TIDELINE_BLESS=1` rewrites
//!    the file from this run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tideline_aws::{DynamoStore, EventBridgeBus, SqsQueue};
use tideline_core::ingest::IngestConfig;
use tideline_core::retry::RetryPolicy;
use tideline_lambdas::{command, emit, query, store, transform};
use tideline_stages::emit::EmitConfig;
use tideline_testkit::fixtures::{self, lambda};
use tideline_testkit::moto;

/// Operations AWS authorizes with another action (the IAM service
/// authorization reference). Everything else is `<service>:<Operation>`.
const AUTHORIZED_BY: &[(&str, &str)] = &[
    ("sqs:SendMessageBatch", "sqs:SendMessage"),
    ("sqs:DeleteMessageBatch", "sqs:DeleteMessage"),
    // The store's transactions hold Puts only (ItemTable::transact takes
    // CondPuts): each item is authorized by PutItem.
    ("dynamodb:TransactWriteItems", "dynamodb:PutItem"),
    // The API Gateway Management API's operations are all authorized by
    // execute-api:ManageConnections, on the connection's ARN.
    (
        "execute-api:PostToConnection",
        "execute-api:ManageConnections",
    ),
    (
        "execute-api:DeleteConnection",
        "execute-api:ManageConnections",
    ),
    ("execute-api:GetConnection", "execute-api:ManageConnections"),
];

fn iam_action(service: &str, operation: &str) -> String {
    let prefix = match service.to_ascii_lowercase().as_str() {
        s if s.contains("dynamodb") => "dynamodb",
        s if s.contains("sqs") => "sqs",
        s if s.contains("eventbridge") || s == "events" => "events",
        s if s.contains("apigatewaymanagement") => "execute-api",
        s => return format!("{s}:{operation}"),
    };
    let op = format!("{prefix}:{operation}");
    AUTHORIZED_BY
        .iter()
        .find(|(o, _)| *o == op)
        .map(|(_, a)| (*a).to_string())
        .unwrap_or(op)
}

/// One recorded call: who (function), what (IAM action), on what (ARN), by
/// whom in the code (`handler` or `event source mapping`).
type Call = (String, String, String, String);

#[derive(Debug, Default)]
struct Log {
    calls: BTreeSet<Call>,
    denied: Vec<String>,
}

#[derive(Debug, Clone)]
struct Recorder {
    function: String,
    resource: String,
    by: &'static str,
    log: Arc<Mutex<Log>>,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "deployed-roles-recorder"
    }

    // Not read_before_execution: a client's interceptors run that before
    // the operation's configuration (its Metadata) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.log.lock().unwrap().calls.insert((
                self.function.clone(),
                iam_action(m.service(), m.name()),
                self.resource.clone(),
                self.by.to_string(),
            ));
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // moto answers a call the caller's policies do not allow with an
        // AccessDenied error (400 or 403 by protocol); the code may treat it
        // as a retryable failure, so it is caught here, not left to the
        // handler's result.
        // A 403 may come with no error code the SDK knows (moto's DynamoDB
        // answers AccessDenied with an empty body): the status counts too.
        let forbidden = context.response().status().as_u16() == 403;
        if let Err(e) = context.output_or_error() {
            let text = format!("{e:?}");
            let denied = [
                "AccessDenied",
                "not authorized",
                "InvalidClientTokenId",
                "SignatureDoesNotMatch",
            ];
            if forbidden || denied.iter().any(|d| text.contains(d)) {
                let op = cfg
                    .load::<Metadata>()
                    .map(|m| format!("{}:{}", m.service(), m.name()))
                    .unwrap_or_default();
                let excerpt: String = text.chars().take(400).collect();
                self.log.lock().unwrap().denied.push(format!(
                    "{} ({}): {op} on {} -> {excerpt}",
                    self.function, self.by, self.resource
                ));
            }
        }
        Ok(())
    }
}

struct Deployed {
    endpoint: String,
    region: String,
    state: Value,
    outputs: Value,
    creds: Value,
    log: Arc<Mutex<Log>>,
}

fn resources(module: &Value, out: &mut Vec<Value>) {
    if let Some(rs) = module["resources"].as_array() {
        out.extend(rs.iter().cloned());
    }
    if let Some(cs) = module["child_modules"].as_array() {
        for c in cs {
            resources(c, out);
        }
    }
}

impl Deployed {
    fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok();
        let read = |p: String| -> Value {
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
        };
        let creds = read(var("TIDELINE_DEPLOYED_CREDENTIALS")?);
        Some(Self {
            endpoint: var("TIDELINE_DEPLOYED_ENDPOINT")?,
            region: creds["region"].as_str().unwrap().to_string(),
            state: read(var("TIDELINE_DEPLOYED_STATE")?),
            outputs: read(var("TIDELINE_DEPLOYED_OUTPUTS")?),
            creds,
            log: Arc::default(),
        })
    }

    /// Fails on the first stage with a denied call, naming each.
    fn no_denied_calls(&self, stage: &str) {
        let log = self.log.lock().unwrap();
        assert!(
            log.denied.is_empty(),
            "{stage}: calls denied by the deployed roles (moto, IAM enforced):\n{}",
            log.denied.join("\n")
        );
    }

    fn output(&self, name: &str) -> String {
        self.outputs[name]["value"].as_str().unwrap().to_string()
    }

    fn all_resources(&self) -> Vec<Value> {
        let mut out = Vec::new();
        resources(&self.state["values"]["root_module"], &mut out);
        out
    }

    /// The deployed function whose name ends with `-<suffix>`.
    fn function(&self, suffix: &str) -> String {
        let names: Vec<String> = self.creds["functions"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names
            .iter()
            .find(|n| n.ends_with(&format!("-{suffix}")))
            .unwrap_or_else(|| panic!("no function *-{suffix} among {names:?}"))
            .clone()
    }

    async fn sdk(&self, function: &str) -> aws_config::SdkConfig {
        let c = &self.creds["functions"][function];
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                c["access_key_id"].as_str().unwrap(),
                c["secret_access_key"].as_str().unwrap(),
                c["session_token"].as_str().map(str::to_string),
                None,
                "assumed-role",
            ))
            .load()
            .await
    }

    fn recorder(&self, function: &str, resource: &str, by: &'static str) -> Recorder {
        Recorder {
            function: function.to_string(),
            resource: resource.to_string(),
            by,
            log: self.log.clone(),
        }
    }

    async fn ddb(&self, f: &str, arn: &str, by: &'static str) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(&self.sdk(f).await)
            .interceptor(self.recorder(f, arn, by))
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    async fn sqs(&self, f: &str, arn: &str, by: &'static str) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::config::Builder::from(&self.sdk(f).await)
            .interceptor(self.recorder(f, arn, by))
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }

    async fn s3(&self, f: &str, resource: &str, by: &'static str) -> aws_sdk_s3::Client {
        // moto serves S3 at the endpoint's path (no virtual-host buckets).
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk(f).await)
            .force_path_style(true)
            .interceptor(self.recorder(f, resource, by))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    async fn streams(&self, f: &str, arn: &str) -> aws_sdk_dynamodbstreams::Client {
        let conf = aws_sdk_dynamodbstreams::config::Builder::from(&self.sdk(f).await)
            .interceptor(self.recorder(f, arn, "event source mapping"))
            .build();
        aws_sdk_dynamodbstreams::Client::from_conf(conf)
    }

    async fn events(&self, f: &str, arn: &str) -> aws_sdk_eventbridge::Client {
        let conf = aws_sdk_eventbridge::config::Builder::from(&self.sdk(f).await)
            .interceptor(self.recorder(f, arn, "handler"))
            .build();
        aws_sdk_eventbridge::Client::from_conf(conf)
    }

    fn arn_of(&self, kind: &str, attr: &str, value: &str) -> String {
        self.all_resources()
            .into_iter()
            .find(|r| r["type"] == kind && r["values"][attr] == value)
            .map(|r| r["values"]["arn"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {kind} with {attr} = {value}"))
    }

    /// A client of the API Gateway Management API with `f`'s role. It goes
    /// to moto's root: moto checks IAM on `/@connections/{id}` but not on the
    /// stage's path (`/live/@connections/{id}`, what the deployed functions'
    /// `TIDELINE_REALTIME_MANAGEMENT_ENDPOINT` names), which would let a
    /// missing permission pass.
    async fn management(&self, f: &str, resource: &str) -> aws_sdk_apigatewaymanagement::Client {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk(f).await)
            .interceptor(self.recorder(f, resource, "handler"))
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(conf)
    }

    /// The first deployed resource of `kind` that `pick` accepts.
    fn resource(&self, kind: &str, pick: impl Fn(&Value) -> bool) -> Value {
        self.all_resources()
            .into_iter()
            .find(|r| r["type"] == kind && pick(&r["values"]))
            .map(|r| r["values"].clone())
            .unwrap_or_else(|| panic!("no {kind} deployed that the roles check can use"))
    }

    /// A function's environment variables, as Terraform deployed them.
    fn environment(&self, function: &str) -> Value {
        self.resource("aws_lambda_function", |v| v["function_name"] == function)
            ["environment"][0]["variables"]
            .clone()
    }

    /// The inline policies of a function's role, as Terraform deployed them.
    fn policies(&self, function: &str) -> Vec<Value> {
        let role_arn = self.creds["functions"][function]["role_arn"]
            .as_str()
            .unwrap();
        let role = role_arn.rsplit('/').next().unwrap();
        self.all_resources()
            .into_iter()
            .filter(|r| r["type"] == "aws_iam_role_policy" && r["values"]["role"] == role)
            .map(|r| serde_json::from_str(r["values"]["policy"].as_str().unwrap()).unwrap())
            .collect()
    }
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

fn glob(pattern: &str, value: &str) -> bool {
    // IAM wildcards: * any run, ? one character.
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// Whether an unconditioned Allow statement of `policies` grants `action` on
/// `resource`, and no Deny statement refuses it.
fn allowed(policies: &[Value], action: &str, resource: &str) -> bool {
    let mut allow = false;
    for p in policies {
        for st in p["Statement"].as_array().into_iter().flatten() {
            let acts = list(&st["Action"]);
            let ress = list(&st["Resource"]);
            // Action names are case-insensitive, resources are not.
            let hit = acts
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && ress.iter().any(|r| glob(r, resource));
            if !hit {
                continue;
            }
            match st["Effect"].as_str() {
                Some("Deny") => return false,
                // A condition the code's calls cannot be shown to meet
                // (kms:ViaService…) does not count as a grant here.
                Some("Allow") if st.get("Condition").is_none() => allow = true,
                _ => {}
            }
        }
    }
    allow
}

fn fast() -> RetryPolicy {
    RetryPolicy::fast(2)
}

fn record(entity: &str, id: &str, n: u32) -> Vec<u8> {
    fixtures::record(entity, "ItemAdded")
        .id(id)
        .occurred_at("2026-11-23T08:00:00Z")
        .data(json!({"n": n}))
        .bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_runs_with_its_own_role_and_no_call_is_denied() {
    let Some(d) = Deployed::from_env() else {
        eprintln!(
            "skip: TIDELINE_DEPLOYED_* not set; scripts/apply-terraform.sh runs this after applying examples/complete to moto"
        );
        return;
    };
    // The handlers' warnings say why a record failed (RUST_LOG filters).
    tideline_aws::logging::init();
    let queue_url = d.output("queue_url");
    let queue_arn = d.arn_of("aws_sqs_queue", "url", &queue_url);
    let table = d.output("table_name");
    let table_arn = d.arn_of("aws_dynamodb_table", "name", &table);
    let stream_arn = d.output("stream_arn");
    let bus = d.output("event_bus_name");
    let bus_arn = d.output("event_bus_arn");
    let lake_bucket = d.output("data_lake_bucket");
    // PutObject is authorized on the object: the prefix the command API
    // writes, as its policy names it.
    let lake_events = format!("arn:aws:s3:::{lake_bucket}/events/*");
    let (transformer, storer, emitter, query_api, command_api) = (
        d.function("transformer"),
        d.function("event-storer"),
        d.function("event-emitter"),
        d.function("query-api"),
        d.function("command-api"),
    );
    let run = moto::unique("roles");
    let entity = |n: u32| format!("{run}-e{n}");

    // transformer (Firehose invokes it): a batch with an invalid record.
    let state = transform::State {
        max_concurrent_sends: tideline_aws::config::DEFAULT_MAX_CONCURRENT_SENDS,
        queue: SqsQueue::new(d.sqs(&transformer, &queue_arn, "handler").await, &queue_url),
        ingest: IngestConfig::default(),
        retry: fast(),
    };
    let mut records = vec![
        record(&entity(1), "a-1", 1),
        record(&entity(2), "b-1", 1),
        record(&entity(1), "a-2", 2),
    ];
    records.insert(1, b"{not json".to_vec());
    // The same record again: a duplicate the store must absorb.
    records.push(record(&entity(1), "a-2", 2));
    let event: LambdaEvent<transform::FirehoseBatch> = lambda(moto::firehose_event(&records));
    let resp = serde_json::to_value(transform::handler(&state, event).await.unwrap()).unwrap();
    let results: Vec<&str> = resp["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results[1], "ProcessingFailed", "{resp}");
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| i == 1 || *r == "Ok"),
        "{resp}"
    );

    d.no_denied_calls("transformer");

    // A poison message on the queue, sent by the test (not recorded) with
    // the transformer's role, the only one allowed to send.
    aws_sdk_sqs::Client::new(&d.sdk(&transformer).await)
        .send_message()
        .queue_url(&queue_url)
        .message_body("{poison: not a normalised record")
        .message_group_id(entity(1))
        .message_deduplication_id(format!("{run}-poison"))
        .send()
        .await
        .unwrap();

    // event-storer, behind the FIFO event source mapping (with its role):
    // first events of entities, a later event, a duplicate, the poison.
    let esm_sqs = d.sqs(&storer, &queue_arn, "event source mapping").await;
    let state = store::State {
        max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
        store: DynamoStore::new(d.ddb(&storer, &table_arn, "handler").await, &table),
    };
    let mut received = 0;
    for _ in 0..20 {
        let (event, messages) = moto::receive_sqs_event(&esm_sqs, &queue_url).await;
        if messages.is_empty() {
            break;
        }
        received += messages.len();
        let resp = store::handler(&state, lambda(event)).await.unwrap();
        let failed: Vec<String> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert!(failed.is_empty(), "the storer failed messages: {failed:?}");
        moto::settle_sqs(&esm_sqs, &queue_url, &messages, &failed).await;
    }

    d.no_denied_calls("event-storer");
    // Three events (the duplicate record has the same de-duplication id, so
    // SQS may drop it) and the poison message.
    assert!(
        received >= 4,
        "the storer's mapping received {received} messages"
    );

    // event-emitter, behind the stream event source mapping (with its
    // role): the new events, then a TTL removal of one of them.
    let mut reader =
        moto::StreamReader::with_client(d.streams(&emitter, &stream_arn).await, &stream_arn).await;
    let all = reader.read().await;
    d.no_denied_calls("event-emitter's stream mapping");
    let stream: Vec<Value> = all
        .iter()
        .filter(|r| r["dynamodb"]["NewImage"]["kind"]["S"] == "event")
        .cloned()
        .collect();
    assert_eq!(
        stream.len(),
        3,
        "three events stored once each; the stream had {} records: {all:?}",
        all.len()
    );
    let state = emit::State {
        bus: EventBridgeBus::new(d.events(&emitter, &bus_arn).await, &bus),
        config: EmitConfig {
            retry: fast(),
            ..EmitConfig::default()
        },
    };
    let emitted = |records: Vec<Value>| {
        let event: LambdaEvent<StreamEvent> = lambda(fixtures::stream_event(records));
        emit::handler(&state, event)
    };
    let resp = serde_json::to_value(emitted(stream.clone()).await.unwrap()).unwrap();
    d.no_denied_calls("event-emitter");
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let mut removal = stream[0].clone();
    removal["eventName"] = json!("REMOVE");
    removal["dynamodb"]["OldImage"] = removal["dynamodb"]["NewImage"].take();
    removal["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    removal["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    let resp = serde_json::to_value(emitted(vec![removal]).await.unwrap()).unwrap();
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");

    // query-api: a history across pages, and an entity that does not exist.
    let state = query::State {
        store: DynamoStore::new(d.ddb(&query_api, &table_arn, "handler").await, &table),
    };
    let get = |path: String, qs: Value| {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path,
            "rawQueryString": "", "headers": {}, "queryStringParameters": qs,
            "requestContext": {"http": {"method": "GET", "path": path}},
            "isBase64Encoded": false
        })
    };
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut qs = json!({"limit": "1"});
        if let Some(c) = &cursor {
            qs["cursor"] = json!(c);
        }
        let resp = query::handler(
            &state,
            lambda(get(format!("/entities/{}/events", entity(1)), qs)),
        )
        .await
        .unwrap();
        assert_eq!(resp.status_code, 200);
        pages += 1;
        let body: Value = match resp.body.unwrap() {
            aws_lambda_events::encodings::Body::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("{other:?}"),
        };
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(pages >= 2, "paged");
    let resp = query::handler(
        &state,
        lambda(get(format!("/entities/{run}-none"), json!({}))),
    )
    .await
    .unwrap();
    assert_eq!(resp.status_code, 404);
    let resp = query::handler(
        &state,
        lambda(get(format!("/entities/{}", entity(2)), json!({}))),
    )
    .await
    .unwrap();
    assert_eq!(resp.status_code, 200);

    // command-api: a two-event command (one transaction), a single one, and
    // a conflict, with the role's credentials; each appended event is
    // written to the lake.
    let state = command::State {
        store: DynamoStore::new(d.ddb(&command_api, &table_arn, "handler").await, &table),
        lake: tideline_aws::lake::S3Lake::new(
            d.s3(&command_api, &lake_events, "handler").await,
            &lake_bucket,
            "",
        ),
        ingest: IngestConfig::default(),
    };
    let post = |path: String, body: Value| {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path,
            "rawQueryString": "", "headers": {}, "body": body.to_string(),
            "requestContext": {"http": {"method": "POST", "path": path}},
            "isBase64Encoded": false
        })
    };
    let path = format!("/entities/{run}-cmd/events");
    for (body, status) in [
        (
            json!({"expected_sequence": 0, "events": [{"id": "a", "type": "T", "data": {}}, {"id": "b", "type": "T", "data": {}}]}),
            201,
        ),
        (
            json!({"expected_sequence": 2, "events": [{"id": "c", "type": "T", "data": {}}]}),
            201,
        ),
        (
            json!({"expected_sequence": 2, "events": [{"id": "d", "type": "T", "data": {}}]}),
            409,
        ),
    ] {
        let resp = command::handler(&state, lambda(post(path.clone(), body)))
            .await
            .unwrap();
        assert_eq!(resp.status_code, status, "{:?}", resp.body);
    }

    // realtime (modules/realtime): each function with its own role, against
    // the connections table and WebSocket API Terraform created.
    let realtime = realtime_functions(&d, &entity(1), &table, &table_arn).await;

    // 1. Nothing was denied.
    let log = std::mem::take(&mut *d.log.lock().unwrap());
    assert!(
        log.denied.is_empty(),
        "calls denied by the deployed roles (moto, IAM enforced):\n{}",
        log.denied.join("\n")
    );

    // Every function made calls, and each was recorded.
    let callers: BTreeSet<&str> = log.calls.iter().map(|c| c.0.as_str()).collect();
    for f in [&transformer, &storer, &emitter, &query_api, &command_api]
        .into_iter()
        .chain(&realtime.callers)
    {
        assert!(
            callers.contains(f.as_str()),
            "no call of {f} was recorded: {log:?}"
        );
    }

    // 2. Static: the deployed policy allows each call on its resource.
    let mut refused = Vec::new();
    for (function, action, resource, by) in &log.calls {
        if !allowed(&d.policies(function), action, resource) {
            refused.push(format!(
                "{function}: {action} on {resource} ({by}) is not allowed by its role's policy"
            ));
        }
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));

    // 3. The recorded list, by role, with resources named by kind.
    let kind = |arn: &str| -> &'static str {
        if arn == table_arn {
            "the events table"
        } else if arn == stream_arn {
            "the events table's stream"
        } else if arn == queue_arn {
            "the FIFO queue"
        } else if arn == bus_arn {
            "the event bus"
        } else if arn == lake_events {
            "the lake's events/ prefix"
        } else if arn == realtime.connections_table_arn {
            "the connections table"
        } else if arn == realtime.manage_connections {
            "the WebSocket API's connections"
        } else {
            "?"
        }
    };
    let role = |f: &str| -> &'static str {
        [
            (&transformer, "transformer"),
            (&storer, "event-storer"),
            (&emitter, "event-emitter"),
            (&query_api, "query-api"),
            (&command_api, "command-api"),
            (&realtime.routes, "realtime-routes"),
            (&realtime.subscriptions, "realtime-subscriptions"),
            (&realtime.relay, "realtime-relay"),
        ]
        .iter()
        .find(|(n, _)| n.as_str() == f)
        .map(|(_, r)| *r)
        .unwrap_or("?")
    };
    let mut recorded: BTreeMap<&str, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (function, action, resource, by) in &log.calls {
        recorded
            .entry(role(function))
            .or_default()
            .entry(format!("{by}: {}", kind(resource)))
            .or_default()
            .insert(action.clone());
    }
    let recorded = serde_json::to_value(&recorded).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../terraform/iam-calls.json"
    );
    if std::env::var("TIDELINE_BLESS").as_deref() == Ok("1") {
        let mut text = serde_json::to_string_pretty(&recorded).unwrap();
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        recorded, committed,
        "the calls the code makes changed: review terraform/functions.tf, then rerun scripts/apply-terraform.sh with TIDELINE_BLESS=1 to update terraform/iam-calls.json (and the README table)"
    );
    eprintln!("{}", serde_json::to_string_pretty(&recorded).unwrap());
}

/// What the realtime part of the check leaves for the call list.
struct RealtimeCalls {
    routes: String,
    subscriptions: String,
    relay: String,
    /// The functions that must have made calls (not the authorizer: it
    /// reads its environment only, and its role grants nothing else).
    callers: Vec<String>,
    connections_table_arn: String,
    /// `execute-api:ManageConnections`' resource for a POST to a connection.
    manage_connections: String,
}

/// The realtime functions with their own roles: the authorizer checks a
/// token against the JWKS and issuer Terraform deployed, the routes connect,
/// subscribe with a resume (the backfill reads the events table), unsubscribe
/// and disconnect, the server-side API subscribes and deletes, and the relay
/// finds a subscriber by Query and posts to it.
async fn realtime_functions(
    d: &Deployed,
    entity: &str,
    events_table: &str,
    events_table_arn: &str,
) -> RealtimeCalls {
    use tideline_lambdas::realtime;
    use tideline_realtime::TokenVerifier;
    use tideline_realtime::auth::{Claims, hs256_token, now_secs};

    let (authorizer, routes, subscriptions, relay) = (
        d.function("realtime-authorizer"),
        d.function("realtime-routes"),
        d.function("realtime-subscriptions"),
        d.function("realtime-relay"),
    );
    let ws = d.resource("aws_apigatewayv2_api", |v| {
        v["protocol_type"] == "WEBSOCKET"
    });
    let ws_id = ws["id"].as_str().unwrap();
    let stage = d.resource("aws_apigatewayv2_stage", |v| v["api_id"] == ws_id);
    let manage_connections = format!(
        "{}/{}/POST/@connections/*",
        ws["execution_arn"].as_str().unwrap(),
        stage["name"].as_str().unwrap()
    );
    let connections = d.resource("aws_dynamodb_table", |v| {
        v["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-connections"))
    });
    let (connections_table, connections_table_arn) = (
        connections["name"].as_str().unwrap().to_string(),
        connections["arn"].as_str().unwrap().to_string(),
    );
    let fixture = |name: &str| -> Value {
        let path = format!(
            "{}/tests/fixtures/realtime/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };

    // realtime-authorizer: the verifier built from the deployed environment.
    let env = d.environment(&authorizer);
    let issuer = env["TIDELINE_REALTIME_ISSUER"].as_str().map(str::to_string);
    let state = realtime::AuthorizerState {
        verifier: TokenVerifier::jwks_json(
            env["TIDELINE_REALTIME_JWKS"].as_str().unwrap(),
            issuer.clone(),
        )
        .unwrap(),
    };
    let claims = Claims {
        sub: "roles-check".into(),
        exp: now_secs() + 600,
        iss: issuer,
        topics: vec!["ItemAdded".into()],
        entities: vec![entity.to_string()],
    };
    // The private key of the test JWKS scripts/apply-terraform.sh deploys.
    let der = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tideline-realtime/tests/fixtures/test-rsa.der"
    ))
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let signed = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(&der),
    )
    .unwrap();
    let connect_request = |token: &str| {
        let mut v = fixture("connect-request.json");
        v["headers"]["Authorization"] = json!(format!("Bearer {token}"));
        v["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {token}")]);
        v
    };
    let allowed = realtime::authorizer(&state, lambda(connect_request(&signed)))
        .await
        .unwrap();
    let effect = |v: &Value| v["policyDocument"]["Statement"][0]["Effect"].clone();
    assert_eq!(effect(&allowed), json!("Allow"), "{allowed}");
    let forged = hs256_token(&claims, b"not the deployed key").unwrap();
    let refused = realtime::authorizer(&state, lambda(connect_request(&forged)))
        .await
        .unwrap();
    assert_eq!(effect(&refused), json!("Deny"), "{refused}");
    d.no_denied_calls("realtime-authorizer");

    // realtime-routes: $connect, subscribe with `since` 0 (the backfill
    // reads the entity's events), unsubscribe, $disconnect.
    let connection = format!("{entity}-ws");
    let routes_state = realtime::RoutesState {
        store: DynamoStore::new(
            d.ddb(&routes, events_table_arn, "handler").await,
            events_table,
        ),
        connections: tideline_aws::realtime::ConnectionsTable::new(
            d.ddb(&routes, &connections_table_arn, "handler").await,
            &connections_table,
        ),
        poster: tideline_aws::realtime::ApiGatewayPoster::new(
            d.management(&routes, &manage_connections).await,
        ),
        max_message_bytes: tideline_realtime::protocol::API_GATEWAY_FRAME_BYTES,
    };
    let route = |name: &str, body: Option<Value>| {
        let mut v = fixture(name);
        v["requestContext"]["connectionId"] = json!(connection);
        v["requestContext"]["authorizer"] = allowed["context"].clone();
        if let Some(b) = body {
            v["body"] = json!(b.to_string());
        }
        v
    };
    for event in [
        route("connect-route.json", None),
        route(
            "subscribe-route.json",
            Some(
                json!({"action": "subscribe", "topic": "ItemAdded", "entities": [entity], "since": {entity: 0}}),
            ),
        ),
    ] {
        let resp = realtime::routes(&routes_state, lambda(event)).await;
        d.no_denied_calls("realtime-routes");
        assert_eq!(resp.unwrap()["statusCode"], 200);
    }

    // realtime-relay: the connection subscribed above is found by Query and
    // posted to.
    let relay_state = realtime::RelayState {
        subscribers: tideline_aws::realtime::ConnectionsTable::new(
            d.ddb(&relay, &connections_table_arn, "handler").await,
            &connections_table,
        ),
        poster: tideline_aws::realtime::ApiGatewayPoster::new(
            d.management(&relay, &manage_connections).await,
        ),
        config: tideline_realtime::relay::RelayConfig {
            concurrency: 4,
            retry: fast(),
            max_message_bytes: tideline_realtime::protocol::API_GATEWAY_FRAME_BYTES,
        },
    };
    let bus_event = json!({
        "detail-type": "ItemAdded", "source": "tideline",
        "detail": {"metadata": {"event_id": format!("{entity}-relayed"), "event_type": "ItemAdded",
            "schema_version": 1, "entity_id": entity, "sequence": 3, "occurred_at": "t",
            "stored_at": "t", "correlation_id": null, "test": false}, "data": {}}
    });
    // A denied call fails the handler: the denial is named first.
    let report = realtime::relay(&relay_state, lambda(bus_event)).await;
    d.no_denied_calls("realtime-relay");
    let report = report.unwrap();
    assert_eq!(report["posted"], 1, "{report}");

    // realtime-routes again: unsubscribe and $disconnect.
    for event in [
        route(
            "subscribe-route.json",
            Some(json!({"action": "unsubscribe", "topic": "ItemAdded", "entities": [entity]})),
        ),
        route("disconnect-route.json", None),
    ] {
        let resp = realtime::routes(&routes_state, lambda(event)).await;
        d.no_denied_calls("realtime-routes");
        assert_eq!(resp.unwrap()["statusCode"], 200);
    }

    // realtime-subscriptions: POST /subscriptions, then DELETE it.
    let table = tideline_aws::realtime::ConnectionsTable::new(
        d.ddb(&subscriptions, &connections_table_arn, "handler")
            .await,
        &connections_table,
    );
    let http = |method: &str, path: &str, body: Option<Value>| {
        json!({
            "version": "2.0", "routeKey": format!("{method} /subscriptions"), "rawPath": path,
            "rawQueryString": "", "headers": {}, "body": body.map(|b| b.to_string()),
            "requestContext": {"http": {"method": method, "path": path}},
            "isBase64Encoded": false
        })
    };
    let created = realtime::subscriptions(
        &table,
        lambda(http(
            "POST",
            "/subscriptions",
            Some(json!({"connection_id": connection, "topic": "ItemAdded", "entities": [entity]})),
        )),
    )
    .await;
    d.no_denied_calls("realtime-subscriptions");
    let created = created.unwrap();
    assert_eq!(created["statusCode"], 201, "{created}");
    let id = serde_json::from_str::<Value>(created["body"].as_str().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = realtime::subscriptions(
        &table,
        lambda(http("DELETE", &format!("/subscriptions/{id}"), None)),
    )
    .await
    .unwrap();
    assert_eq!(deleted["statusCode"], 204, "{deleted}");
    d.no_denied_calls("realtime-subscriptions");

    RealtimeCalls {
        callers: vec![routes.clone(), subscriptions.clone(), relay.clone()],
        routes,
        subscriptions,
        relay,
        connections_table_arn,
        manage_connections,
    }
}
