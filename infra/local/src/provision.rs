//! Creates every table, queue, bucket and secret of the template in the emulator, idempotently: keys, indexes, TTL, billing
//! mode, queue attributes and the redrive policy to each dead-letter queue.

use crate::{
    stack::{QueueSpec, Stack, TableSpec},
    template::plain,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, ProvisionedThroughput, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use std::collections::HashMap;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
    #[error("queue {queue}: {message}")]
    Queue { queue: String, message: String },
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    #[error("secret {secret}: {message}")]
    Secret { secret: String, message: String },
    #[error("the credentials of {user}: {message}")]
    Credentials { user: String, message: String },
    #[error("bucket {bucket}: {message}")]
    Bucket { bucket: String, message: String },
    #[error("SNS platform application {platform}: {message}")]
    Platform { platform: String, message: String },
}

fn table_err(t: &TableSpec, e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Table {
        table: t.name.clone(),
        message: e.to_string(),
    }
}

fn key_schema(t: &TableSpec, v: &Value) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(plain(&k["AttributeName"]))
                .key_type(KeyType::from(plain(&k["KeyType"]).as_str()))
                .build()
                .map_err(|e| table_err(t, e))
        })
        .collect()
}

fn projection(v: &Value) -> Projection {
    let p = Projection::builder().projection_type(ProjectionType::from(plain(&v["ProjectionType"]).as_str()));
    match v["NonKeyAttributes"].as_array() {
        Some(attrs) => p
            .set_non_key_attributes(Some(attrs.iter().map(plain).collect()))
            .build(),
        None => p.build(),
    }
}

fn throughput(t: &TableSpec, v: &Value) -> Result<Option<ProvisionedThroughput>, ProvisionError> {
    if v.is_null() {
        return Ok(None);
    }
    let n = |k: &str| {
        plain(&v[k])
            .parse::<i64>()
            .map_err(|_| table_err(t, format!("ProvisionedThroughput.{k}")))
    };
    Ok(Some(
        ProvisionedThroughput::builder()
            .read_capacity_units(n("ReadCapacityUnits")?)
            .write_capacity_units(n("WriteCapacityUnits")?)
            .build()
            .map_err(|e| table_err(t, e))?,
    ))
}

/// Creates the tables (idempotently), with a stream of new images when `streams` (what the read-lag replica
/// follows).
pub async fn create_tables(
    dynamo: &aws_sdk_dynamodb::Client,
    tables: &[TableSpec],
    streams: bool,
) -> Result<(), ProvisionError> {
    futures::future::try_join_all(tables.iter().map(|t| create_table(dynamo, t, streams))).await?;
    Ok(())
}

async fn create_table(dynamo: &aws_sdk_dynamodb::Client, t: &TableSpec, streams: bool) -> Result<(), ProvisionError> {
    let p = &t.properties;
    let attributes = p["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(plain(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(plain(&a["AttributeType"]).as_str()))
                .build()
                .map_err(|e| table_err(t, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let on_demand = plain(&p["BillingMode"]) == "PAY_PER_REQUEST";
    let mut req = dynamo
        .create_table()
        .table_name(&t.name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(t, &p["KeySchema"])?))
        .billing_mode(if on_demand {
            BillingMode::PayPerRequest
        } else {
            BillingMode::Provisioned
        })
        .set_provisioned_throughput(throughput(t, &p["ProvisionedThroughput"])?);
    // The template's own streams (event sources read them), or every table's for the read-lag replica.
    if streams || p.get("StreamSpecification").is_some() {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(|e| table_err(t, e))?,
        );
    }
    for g in p["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(plain(&g["IndexName"]))
                .set_key_schema(Some(key_schema(t, &g["KeySchema"])?))
                .projection(projection(&g["Projection"]))
                .set_provisioned_throughput(throughput(t, &g["ProvisionedThroughput"])?)
                .build()
                .map_err(|e| table_err(t, e))?,
        );
    }
    for l in p["LocalSecondaryIndexes"].as_array().into_iter().flatten() {
        req = req.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(plain(&l["IndexName"]))
                .set_key_schema(Some(key_schema(t, &l["KeySchema"])?))
                .projection(projection(&l["Projection"]))
                .build()
                .map_err(|e| table_err(t, e))?,
        );
    }
    match req.send().await {
        Ok(_) => info!(table = %t.name, "created table"),
        Err(e) if e.as_service_error().is_some_and(|x| x.is_resource_in_use_exception()) => {}
        Err(e) => return Err(table_err(t, aws_sdk_dynamodb::error::DisplayErrorContext(e))),
    }
    let ttl = &p["TimeToLiveSpecification"];
    if plain(&ttl["Enabled"]) == "true" {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(plain(&ttl["AttributeName"]))
            .enabled(true)
            .build()
            .map_err(|e| table_err(t, e))?;
        let current = dynamo
            .describe_time_to_live()
            .table_name(&t.name)
            .send()
            .await
            .map_err(|e| table_err(t, e))?;
        let enabled = current
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status())
            .is_some_and(|s| s.as_str() == "ENABLED");
        if !enabled {
            dynamo
                .update_time_to_live()
                .table_name(&t.name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| table_err(t, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        }
    }
    Ok(())
}

fn queue_attributes(q: &QueueSpec) -> HashMap<QueueAttributeName, String> {
    let mut out = HashMap::new();
    for (k, v) in q.properties.as_object().into_iter().flatten() {
        let value = match k.as_str() {
            "QueueName" | "Tags" => continue,
            // SQS takes the redrive policy as a JSON string.
            "RedrivePolicy" | "RedriveAllowPolicy" => v.to_string(),
            _ => plain(v),
        };
        out.insert(QueueAttributeName::from(k.as_str()), value);
    }
    out
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    q: &QueueSpec,
    max_visibility: Option<u64>,
) -> Result<(String, Option<String>), ProvisionError> {
    let qerr = |e: String| ProvisionError::Queue {
        queue: q.name.clone(),
        message: e,
    };
    let mut attributes = queue_attributes(q);
    if let Some(cap) = max_visibility {
        let v = attributes
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        attributes.insert(QueueAttributeName::VisibilityTimeout, v.min(cap).to_string());
    }
    let r = sqs
        .create_queue()
        .queue_name(&q.name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await;
    let url = match r {
        Ok(out) => out.queue_url.unwrap_or_default(),
        // Exists with other attributes (the template changed): bring it up to date.
        Err(e) if e.as_service_error().is_some_and(|x| x.is_queue_name_exists()) => {
            let url = sqs
                .get_queue_url()
                .queue_name(&q.name)
                .send()
                .await
                .map_err(|e| qerr(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?
                .queue_url
                .unwrap_or_default();
            let mutable: HashMap<_, _> = attributes
                .into_iter()
                .filter(|(k, _)| !matches!(k, QueueAttributeName::FifoQueue))
                .collect();
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(mutable))
                .send()
                .await
                .map_err(|e| qerr(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            url
        }
        Err(e) => return Err(qerr(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())),
    };
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| qerr(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn));
    Ok((url, arn))
}

/// The clients provisioning uses: DynamoDB may be another endpoint than the rest.
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub s3: aws_sdk_s3::Client,
}

/// How to provision.
#[derive(Debug, Clone, Default)]
pub struct ProvisionOptions {
    /// Caps queue visibility timeouts, so that locally a failed job returns in seconds.
    pub max_visibility: Option<u64>,
    /// The value of every secret the template creates (the local token signing key).
    pub secret_value: String,
    /// Tables get a stream of new images (for the read-lag replica).
    pub streams: bool,
}

/// Provisions every table, queue and secret, then records what the emulator gave (queue URLs and ARNs, secret
/// ARNs) in the stack.
pub async fn provision(stack: &mut Stack, clients: &Clients, opts: &ProvisionOptions) -> Result<(), ProvisionError> {
    let (max_visibility, secret_value) = (opts.max_visibility, opts.secret_value.as_str());
    let (dynamo, sqs) = (&clients.dynamodb, &clients.sqs);
    for s in stack.secrets()? {
        let arn = put_secret(&clients.secrets, &s.name, secret_value)
            .await
            .map_err(|message| ProvisionError::Secret {
                secret: s.name.clone(),
                message,
            })?;
        stack.set_secret_arn(&s.logical_id, &arn);
    }
    create_tables(dynamo, &stack.tables()?, opts.streams).await?;
    crate::buckets::create_buckets(&clients.s3, &crate::buckets::buckets(stack)?).await?;
    // Dead-letter queues first: a redrive policy must name an existing queue, by the ARN the emulator gave it
    // (so the policies are resolved again once those ARNs are known).
    let has_redrive = |q: &QueueSpec| q.properties.get("RedrivePolicy").is_some();
    let first: Vec<QueueSpec> = stack.queues()?.into_iter().filter(|q| !has_redrive(q)).collect();
    for q in &first {
        let (url, arn) = create_queue(sqs, q, max_visibility).await?;
        stack.set_queue(&q.logical_id, &url, arn.as_deref());
    }
    let then: Vec<QueueSpec> = stack.queues()?.into_iter().filter(has_redrive).collect();
    for q in &then {
        let (url, arn) = create_queue(sqs, q, max_visibility).await?;
        stack.set_queue(&q.logical_id, &url, arn.as_deref());
    }
    Ok(())
}

/// Creates the secret, or gives an existing one the value; its ARN.
async fn put_secret(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) -> Result<String, String> {
    fn text(e: impl std::error::Error) -> String {
        aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()
    }
    match client.create_secret().name(name).secret_string(value).send().await {
        Ok(out) => Ok(out.arn.unwrap_or_default()),
        Err(e) if e.as_service_error().is_some_and(|x| x.is_resource_exists_exception()) => {
            let out = client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map_err(text)?;
            Ok(out.arn.unwrap_or_default())
        }
        Err(e) => Err(text(e)),
    }
}

/// Timeouts for provisioning calls: an emulator busy with other stacks (tests run several at once) can take more
/// than a function's 5 s to create a table or a secret.
pub fn patient() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(std::time::Duration::from_secs(20))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build()
}

/// The push platforms natter-local offers on an emulator: (template parameter, SNS platform, name).
const PLATFORMS: [(&str, &str, &str); 2] = [
    ("FcmPlatformApplicationArn", "GCM", "natter-fcm"),
    ("ApnsPlatformApplicationArn", "APNS", "natter-apns"),
];

/// Creates (or finds) the stack's SNS platform applications in the emulator; each template parameter with the
/// application's ARN. The credentials are placeholders: the emulator delivers nothing, natter-local records what
/// would have been sent (`notifications.rs`).
pub async fn platform_applications(
    sns: &aws_sdk_sns::Client,
    prefix: &str,
) -> Result<Vec<(String, String)>, ProvisionError> {
    let mut out = Vec::new();
    for (param, platform, name) in PLATFORMS {
        let r = sns
            .create_platform_application()
            .name(format!("{prefix}{name}"))
            .platform(platform)
            .attributes("PlatformCredential", "natter-local")
            .attributes("PlatformPrincipal", "natter-local")
            .send()
            .await
            .map_err(|e| ProvisionError::Platform {
                platform: platform.to_owned(),
                message: aws_sdk_sns::error::DisplayErrorContext(e).to_string(),
            })?;
        out.push((param.to_owned(), r.platform_application_arn.unwrap_or_default()));
    }
    Ok(out)
}
