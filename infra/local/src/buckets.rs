//! The template's S3 buckets in the emulator: created idempotently with their CORS rules, so that a browser page
//! served by natter-local can upload to a presigned URL and show what it downloads, as it would on AWS.
//!
//! Encryption, the public access block and lifecycle rules are AWS's to enforce; the emulator keeps objects until
//! the stack goes.

use crate::{
    provision::ProvisionError,
    stack::Stack,
    template::{TemplateError, plain},
};
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use serde_json::Value;

/// A bucket as the template declares it.
#[derive(Debug, Clone)]
pub struct BucketSpec {
    pub logical_id: String,
    pub name: String,
    pub properties: Value,
}

/// A local bucket name from a logical id and the stack's prefix: S3 allows 3-63 lowercase letters, digits and
/// hyphens.
pub fn bucket_name(prefixed_id: &str) -> String {
    let name: String = prefixed_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    let name = name.trim_matches('-').to_owned();
    if name.len() < 3 { format!("{name}-bucket") } else { name }
}

/// An S3 client for provisioning: buckets by path on an emulator.
pub fn client(sdk: &aws_config::SdkConfig, timeouts: aws_config::timeout::TimeoutConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .timeout_config(timeouts)
            .build(),
    )
}

pub fn buckets(stack: &Stack) -> Result<Vec<BucketSpec>, TemplateError> {
    stack
        .template
        .resources_of_type("AWS::S3::Bucket")
        .map(|(id, p)| {
            Ok(BucketSpec {
                logical_id: id.to_owned(),
                name: plain(&stack.names.refs[id]),
                properties: stack.resolver().resolve(p)?,
            })
        })
        .collect()
}

fn bucket_err(b: &BucketSpec, e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Bucket {
        bucket: b.name.clone(),
        message: e.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().map(plain).collect()
}

/// The bucket's `CorsConfiguration`, as S3 takes it.
fn cors(b: &BucketSpec) -> Result<Option<CorsConfiguration>, ProvisionError> {
    let Some(rules) = b.properties["CorsConfiguration"]["CorsRules"].as_array() else {
        return Ok(None);
    };
    let rules = rules
        .iter()
        .map(|r| {
            // Lists the rule leaves out stay out: an empty element is malformed to S3 (and moto).
            let listed = |k: &str| Some(strings(&r[k])).filter(|l| !l.is_empty());
            let mut rule = CorsRule::builder()
                .set_allowed_methods(listed("AllowedMethods"))
                .set_allowed_origins(listed("AllowedOrigins"))
                .set_allowed_headers(listed("AllowedHeaders"))
                .set_expose_headers(listed("ExposedHeaders"));
            if let Ok(age) = plain(&r["MaxAge"]).parse() {
                rule = rule.max_age_seconds(age);
            }
            rule.build().map_err(|e| bucket_err(b, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsConfiguration::builder()
            .set_cors_rules(Some(rules))
            .build()
            .map_err(|e| bucket_err(b, e))?,
    ))
}

/// Creates each bucket (one that exists is kept) and sets its CORS rules.
pub async fn create_buckets(s3: &aws_sdk_s3::Client, buckets: &[BucketSpec]) -> Result<(), ProvisionError> {
    for b in buckets {
        if let Err(e) = s3.create_bucket().bucket(&b.name).send().await {
            let exists = e
                .as_service_error()
                .is_some_and(|x| x.is_bucket_already_owned_by_you() || x.is_bucket_already_exists());
            if !exists {
                return Err(bucket_err(b, aws_sdk_s3::error::DisplayErrorContext(e)));
            }
        }
        if let Some(cors) = cors(b)? {
            s3.put_bucket_cors()
                .bucket(&b.name)
                .cors_configuration(cors)
                .send()
                .await
                .map_err(|e| bucket_err(b, aws_sdk_s3::error::DisplayErrorContext(e)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bucket_name;

    #[test]
    fn local_bucket_names_are_valid_s3_names() {
        assert_eq!(bucket_name("t123n4_AttachmentsBucket"), "t123n4-attachmentsbucket");
        assert_eq!(bucket_name("AttachmentsBucket"), "attachmentsbucket");
        assert_eq!(bucket_name(&"X".repeat(80)).len(), 63);
        assert_eq!(bucket_name("_a"), "a-bucket");
    }
}
