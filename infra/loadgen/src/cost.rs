//! List prices and the cost of a million messages.

use serde::Serialize;

/// AWS list prices, us-east-1, as published in November 2026 (DynamoDB on-demand at the rates of its November 2024
/// reduction; API Gateway WebSocket messages at the first-billion tier).
#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    pub as_of: &'static str,
    pub dynamodb_write_per_million_units: f64,
    pub dynamodb_read_per_million_units: f64,
    pub sqs_per_million_requests: f64,
    pub lambda_per_million_requests: f64,
    pub lambda_arm64_per_gb_second: f64,
    pub websocket_per_million_messages: f64,
    pub websocket_per_million_connection_minutes: f64,
}

pub const PRICES: Prices = Prices {
    as_of: "2026-11, us-east-1 list prices",
    dynamodb_write_per_million_units: 0.625,
    dynamodb_read_per_million_units: 0.125,
    sqs_per_million_requests: 0.40,
    lambda_per_million_requests: 0.20,
    lambda_arm64_per_gb_second: 0.000_013_333_4,
    websocket_per_million_messages: 1.00,
    websocket_per_million_connection_minutes: 0.25,
};

/// What one message uses, on average.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct PerMessage {
    pub write_units: f64,
    pub read_units: f64,
    pub sqs_requests: f64,
    pub lambda_invocations: f64,
    pub lambda_gb_seconds: f64,
    pub websocket_messages: f64,
}

/// Dollars per million messages, by service.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Cost {
    pub dynamodb: f64,
    pub sqs: f64,
    pub lambda: f64,
    pub api_gateway: f64,
    pub total: f64,
}

pub fn per_million(m: &PerMessage, p: &Prices) -> Cost {
    let dynamodb =
        m.write_units * p.dynamodb_write_per_million_units + m.read_units * p.dynamodb_read_per_million_units;
    let sqs = m.sqs_requests * p.sqs_per_million_requests;
    let lambda =
        m.lambda_invocations * p.lambda_per_million_requests + m.lambda_gb_seconds * 1e6 * p.lambda_arm64_per_gb_second;
    let api_gateway = m.websocket_messages * p.websocket_per_million_messages;
    Cost {
        dynamodb,
        sqs,
        lambda,
        api_gateway,
        total: dynamodb + sqs + lambda + api_gateway,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_messages_of_one_write_each_cost_the_write_price() {
        let c = per_million(
            &PerMessage {
                write_units: 1.0,
                ..Default::default()
            },
            &PRICES,
        );
        assert_eq!(c.dynamodb, 0.625);
        assert_eq!(c.total, 0.625);
        let c = per_million(
            &PerMessage {
                lambda_gb_seconds: 0.25 * 0.05,
                ..Default::default()
            },
            &PRICES,
        );
        assert!((c.lambda - 0.1666675).abs() < 1e-6, "{}", c.lambda);
    }
}
