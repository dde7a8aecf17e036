//! Secrets read once at init from AWS Secrets Manager: never from a plain environment variable, where anyone who
//! can read a function's configuration would see them. A secret that cannot be read stops the function starting.

use aws_config::SdkConfig;

/// The string value of the secret `arn` names.
pub async fn secret_string(sdk: &SdkConfig, what: &str, arn: &str) -> Result<String, String> {
    // Read once, at init, where Lambda allows 10 s: more patience than a request's 5 s, so that a slow first call
    // does not fail the whole instance.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(std::time::Duration::from_secs(4))
        .operation_timeout(std::time::Duration::from_secs(9))
        .build();
    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .build();
    let out = aws_sdk_secretsmanager::Client::from_conf(config)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "could not read the {what} {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    out.secret_string()
        .map(str::to_owned)
        .ok_or_else(|| format!("the {what} {arn} has no string value"))
}
