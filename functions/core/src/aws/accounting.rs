//! The SDK interceptor that feeds a [`Meter`]: every DynamoDB, SQS and @connections call a function makes is
//! counted, DynamoDB is asked for the capacity it consumed (`ReturnConsumedCapacity=TOTAL`, set on every request
//! here), natter's capacity model prices the request itself ([`super::capacity`]), and the time a call is in
//! flight runs the meter's busy clock.

use crate::meter::Meter;
use aws_sdk_dynamodb::{
    operation::{
        batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
        batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
        delete_item::{DeleteItemInput, DeleteItemOutput},
        get_item::{GetItemInput, GetItemOutput},
        put_item::{PutItemInput, PutItemOutput},
        query::{QueryInput, QueryOutput},
        transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
        update_item::{UpdateItemInput, UpdateItemOutput},
    },
    types::{ConsumedCapacity, ReturnConsumedCapacity},
};
use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            Intercept,
            context::{
                BeforeSerializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
                FinalizerInterceptorContextRef,
            },
        },
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::ConfigBag;

/// Error codes of a refused attempt that mean "slow down".
const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

/// Consumed capacity as (read, write) units, by the kind of operation that reported it.
fn split(op: &str, capacity: &[ConsumedCapacity]) -> (f64, f64) {
    let units: f64 = capacity.iter().filter_map(|c| c.capacity_units()).sum();
    if matches!(op, "GetItem" | "BatchGetItem" | "Query" | "Scan") {
        (units, 0.0)
    } else {
        (0.0, units)
    }
}

/// The interceptor that counts. Every client gets one (see `aws::wiring`), all feeding the function's meter;
/// DynamoDB clients get natter's index schema for the modelled capacity.
#[derive(Clone)]
pub struct Accounting {
    meter: Meter,
    schema: super::capacity::Schema,
}

impl std::fmt::Debug for Accounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Accounting")
    }
}

impl Accounting {
    pub fn new(meter: Meter, schema: super::capacity::Schema) -> Self {
        Self { meter, schema }
    }

    /// For clients other than DynamoDB (no capacity to model).
    pub fn calls_only(meter: Meter) -> Self {
        Self::new(meter, Default::default())
    }
}

/// The modelled units of a request in flight and its place in the chain of calls, kept in its operation's config bag until it completes.
#[derive(Debug, Clone, Copy)]
struct Modelled(f64, f64, u32);

impl aws_smithy_types::config_bag::Storable for Modelled {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

fn operation(cfg: &ConfigBag) -> (String, String) {
    cfg.load::<Metadata>()
        .map(|m| (m.service().to_owned(), m.name().to_owned()))
        .unwrap_or_default()
}

impl Intercept for Accounting {
    fn name(&self) -> &'static str {
        "natter-accounting"
    }

    // Client interceptors see this hook before the operation's configuration (and so its name) is applied: it only
    // starts the busy clock; the call is counted in `modify_before_serialization`, once per execution.
    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.meter.call_started();
        Ok(())
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        let depth = self.meter.count_call(format!("{service}.{op}"));
        let (read, write) = super::capacity::request_units(&self.schema, context.input());
        cfg.interceptor_state().store_put(Modelled(read, write, depth));
        // Every DynamoDB request reports the capacity it consumed: free, and what the cost model rests on.
        let input = context.input_mut();
        let total = Some(ReturnConsumedCapacity::Total);
        macro_rules! ask {
            ($($t:ty),*) => {
                $(if let Some(i) = input.downcast_mut::<$t>() { i.return_consumed_capacity = total.clone(); })*
            };
        }
        ask!(
            GetItemInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            QueryInput,
            BatchGetItemInput,
            BatchWriteItemInput,
            TransactWriteItemsInput
        );
        Ok(())
    }

    // Per attempt: the SDK retries throttling, so the execution's outcome would hide every attempt it absorbed.
    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(r) = context.response()
            && (r.status().as_u16() == 400 || r.status().as_u16() == 429)
            && r.body().bytes().is_some_and(|b| {
                THROTTLING
                    .iter()
                    .any(|code| b.windows(code.len()).any(|w| w == code.as_bytes()))
            })
        {
            self.meter.count_throttled();
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (_, op) = operation(cfg);
        let output = context.output_or_error().and_then(|r| r.ok());
        // Failed conditional writes and cancelled transactions are billed too: count the model either way.
        let Modelled(mut read, write, depth) = cfg.load::<Modelled>().copied().unwrap_or(Modelled(0.0, 0.0, 1));
        if let Some(q) = output.and_then(|o| o.downcast_ref::<QueryOutput>()) {
            read += super::capacity::query_units(q, false);
        }
        let mut consumed = (0.0, 0.0);
        if let Some(out) = output {
            macro_rules! one {
                ($($t:ty),*) => {
                    $(if let Some(o) = out.downcast_ref::<$t>() { if let Some(cc) = o.consumed_capacity() { consumed = split(&op, std::slice::from_ref(cc)); } })*
                };
            }
            macro_rules! many {
                ($($t:ty),*) => {
                    $(if let Some(o) = out.downcast_ref::<$t>() { consumed = split(&op, o.consumed_capacity()); })*
                };
            }
            one!(
                GetItemOutput,
                PutItemOutput,
                UpdateItemOutput,
                DeleteItemOutput,
                QueryOutput
            );
            many!(BatchGetItemOutput, BatchWriteItemOutput, TransactWriteItemsOutput);
        }
        self.meter.call_ended(depth, (read, write), consumed);
        Ok(())
    }
}
