//! Secrets read once at init from AWS Secrets Manager: never from a plain environment variable, where anyone who
//! can read a function's configuration would see them. A secret that cannot be read stops the function starting.

use aws_config::SdkConfig;

/// The string value of the secret `arn` names.
pub async fn secret_string(sdk: &SdkConfig, what: &str, arn: &str) -> Result<String, String> {
    let out = aws_sdk_secretsmanager::Client::new(sdk)
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
