//! Modelled DynamoDB capacity: what a request costs under DynamoDB's rules, computed from the request itself.
//!
//! On AWS, `ReturnConsumedCapacity` reports the real figure. Emulators report constants (moto answers 0.5 or 1 per
//! call whatever the item), so natter also computes the capacity it expects, from the documented rules:
//! - a write costs one unit per started KB of the item (updates and deletes: the item is assumed under 1 KB, which
//!   holds for natter's mutable items with bodies up to ~700 bytes);
//! - a transactional write costs twice that;
//! - every secondary index entry a write creates, changes or removes costs one more write (the index's projection
//!   decides whether a changed attribute touches the index);
//! - an eventually consistent read costs half a unit per started 4 KB, a strongly consistent one a whole unit, per
//!   item (GetItem, BatchGetItem) or per 4 KB of items returned (Query).

use aws_sdk_dynamodb::{
    operation::{
        batch_get_item::BatchGetItemInput, batch_write_item::BatchWriteItemInput, delete_item::DeleteItemInput,
        get_item::GetItemInput, put_item::PutItemInput, query::QueryOutput,
        transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
    },
    types::AttributeValue,
};
use aws_smithy_runtime_api::client::interceptors::context::Input;
use std::collections::{HashMap, HashSet};

/// A secondary index as far as write cost goes: its key attributes, and the attributes it projects (`None`: all).
#[derive(Debug, Clone)]
pub struct IndexCost {
    pub keys: Vec<&'static str>,
    pub projects: Option<Vec<&'static str>>,
}

/// Secondary indexes per physical table name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub indexes: HashMap<String, Vec<IndexCost>>,
}

impl Schema {
    /// natter's indexes (template.yaml), keyed by the deployed table names.
    pub fn natter(tables: &crate::config::Tables) -> Self {
        let mut indexes = HashMap::new();
        indexes.insert(
            tables.messages.clone(),
            vec![IndexCost {
                keys: vec!["inbox", "message_id"],
                projects: None,
            }],
        );
        // ByUser projects only keys: a member's mark update does not touch it.
        indexes.insert(
            tables.group_members.clone(),
            vec![IndexCost {
                keys: vec!["user_id", "group_id"],
                projects: Some(vec![]),
            }],
        );
        Self { indexes }
    }

    fn of(&self, table: &str) -> &[IndexCost] {
        self.indexes.get(table).map(Vec::as_slice).unwrap_or_default()
    }
}

/// The size DynamoDB bills for an attribute value.
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').replace('.', "").len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
        AttributeValue::Ns(n) => n.iter().map(|x| x.len().div_ceil(2) + 1).sum(),
        _ => 0,
    }
}

/// The size DynamoDB bills for an item.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Index writes a new item causes: one per index whose key attributes it carries (the projected size rounds to 1 KB).
fn put_index_units(schema: &Schema, table: &str, item: &HashMap<String, AttributeValue>) -> f64 {
    schema
        .of(table)
        .iter()
        .filter(|i| i.keys.iter().all(|k| item.contains_key(*k)))
        .map(|i| {
            if i.projects.is_none() {
                write_units(item_size(item))
            } else {
                1.0
            }
        })
        .sum()
}

/// Attribute names an update expression touches (natter writes every name through a `#placeholder`).
fn touched(expression: &str, names: Option<&HashMap<String, String>>) -> HashSet<String> {
    names
        .into_iter()
        .flatten()
        .filter(|(placeholder, _)| expression.contains(placeholder.as_str()))
        .map(|(_, name)| name.clone())
        .collect()
}

/// Index writes an update causes: one per index it changes (its key, or a projected attribute).
fn update_index_units(schema: &Schema, table: &str, touched: &HashSet<String>) -> f64 {
    schema
        .of(table)
        .iter()
        .filter(|i| {
            i.keys.iter().any(|k| touched.contains(*k))
                || match &i.projects {
                    None => !touched.is_empty(),
                    Some(p) => p.iter().any(|a| touched.contains(*a)),
                }
        })
        .count() as f64
}

/// Read and write units a request will cost, from the request alone (Query reads are counted from the output).
pub fn request_units(schema: &Schema, input: &Input) -> (f64, f64) {
    if let Some(i) = input.downcast_ref::<PutItemInput>() {
        let item = i.item().cloned().unwrap_or_default();
        let table = i.table_name().unwrap_or_default();
        return (
            0.0,
            write_units(item_size(&item)) + put_index_units(schema, table, &item),
        );
    }
    if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
        let t = touched(
            i.update_expression().unwrap_or_default(),
            i.expression_attribute_names(),
        );
        return (
            0.0,
            1.0 + update_index_units(schema, i.table_name().unwrap_or_default(), &t),
        );
    }
    if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
        // A delete removes the item from every index it is in; natter deletes only un-indexed items and members.
        return (0.0, 1.0 + schema.of(i.table_name().unwrap_or_default()).len() as f64);
    }
    if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        let mut units = 0.0;
        for item in i.transact_items() {
            if let Some(p) = item.put() {
                units += 2.0 * write_units(item_size(p.item())) + put_index_units(schema, p.table_name(), p.item());
            } else if let Some(u) = item.update() {
                let t = touched(u.update_expression(), u.expression_attribute_names());
                units += 2.0 + update_index_units(schema, u.table_name(), &t);
            } else if let Some(d) = item.delete() {
                units += 2.0 + schema.of(d.table_name()).len() as f64;
            } else {
                units += 2.0;
            }
        }
        return (0.0, units);
    }
    if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        let mut units = 0.0;
        for (table, writes) in i.request_items().into_iter().flatten() {
            for w in writes {
                if let Some(p) = w.put_request() {
                    units += write_units(item_size(p.item())) + put_index_units(schema, table, p.item());
                } else {
                    units += 1.0 + schema.of(table).len() as f64;
                }
            }
        }
        return (0.0, units);
    }
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        return (if i.consistent_read() == Some(true) { 1.0 } else { 0.5 }, 0.0);
    }
    if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        let reads: f64 = i
            .request_items()
            .into_iter()
            .flatten()
            .map(|(_, k)| k.keys().len() as f64 * if k.consistent_read() == Some(true) { 1.0 } else { 0.5 })
            .sum();
        return (reads, 0.0);
    }
    (0.0, 0.0)
}

/// Read units of a Query, from the items it returned.
pub fn query_units(output: &QueryOutput, consistent: bool) -> f64 {
    let bytes: usize = output.items().iter().map(item_size).sum();
    bytes.div_ceil(4096).max(1) as f64 * if consistent { 1.0 } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tables;

    fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(item_size(&item(&[("ab", AttributeValue::S("xyz".into()))])), 5);
        assert_eq!(item_size(&item(&[("n", AttributeValue::N("12345".into()))])), 1 + 4);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
    }

    #[test]
    fn a_message_with_an_inbox_writes_its_index_entry_too() {
        let tables = Tables::prefixed("");
        let schema = Schema::natter(&tables);
        let message = item(&[
            ("message_id", AttributeValue::S("01".into())),
            ("inbox", AttributeValue::S("bob".into())),
            ("body", AttributeValue::S("x".repeat(100))),
        ]);
        let input = PutItemInput::builder()
            .table_name(&tables.messages)
            .set_item(Some(message))
            .build()
            .unwrap();
        assert_eq!(request_units(&schema, &Input::erase(input)), (0.0, 2.0));
        let group_message = item(&[
            ("message_id", AttributeValue::S("01".into())),
            ("body", AttributeValue::S("x".into())),
        ]);
        let input = PutItemInput::builder()
            .table_name(&tables.messages)
            .set_item(Some(group_message))
            .build()
            .unwrap();
        assert_eq!(request_units(&schema, &Input::erase(input)), (0.0, 1.0));
    }

    #[test]
    fn an_ack_removes_the_inbox_entry_and_a_mark_update_leaves_the_keys_only_index_alone() {
        let tables = Tables::prefixed("");
        let schema = Schema::natter(&tables);
        let ack = UpdateItemInput::builder()
            .table_name(&tables.messages)
            .update_expression("SET #delivered_at = :now REMOVE #inbox")
            .expression_attribute_names("#delivered_at", "delivered_at")
            .expression_attribute_names("#inbox", "inbox")
            .build()
            .unwrap();
        assert_eq!(request_units(&schema, &Input::erase(ack)), (0.0, 2.0));
        let mark = UpdateItemInput::builder()
            .table_name(&tables.group_members)
            .update_expression("SET #mark = :seq")
            .expression_attribute_names("#mark", "last_read_seq")
            .build()
            .unwrap();
        assert_eq!(request_units(&schema, &Input::erase(mark)), (0.0, 1.0));
    }
}
