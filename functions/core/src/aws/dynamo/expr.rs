//! Building requests: attribute values, `#name` placeholders, keys, and items through serde_dynamo.

use super::{Item, items::attr};
use crate::{
    error::BackendError,
    ids::{GroupId, UserId},
    ports::Res,
};
use aws_sdk_dynamodb::types::AttributeValue as Av;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;

pub(super) fn s(v: impl Into<String>) -> Av {
    Av::S(v.into())
}

pub(super) fn n(v: impl ToString) -> Av {
    Av::N(v.to_string())
}

pub(super) fn to_item<T: Serialize>(what: &'static str, v: &T) -> Res<Item> {
    serde_dynamo::to_item(v).map_err(|e| BackendError::corrupt(what, e))
}

/// An item in the shape this code writes, or `Corrupt` (a bug or a foreign writer).
pub(super) fn from_item<T: DeserializeOwned>(what: &'static str, item: Item) -> Res<T> {
    serde_dynamo::from_item(item).map_err(|e| BackendError::corrupt(what, e))
}

/// A number attribute of an item, if present and numeric.
pub(super) fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// `#name` placeholders for attribute names: every name goes through one, so reserved words (`timestamp`,
/// `status`, ...) never matter.
pub(super) fn names(list: &[&str]) -> Option<HashMap<String, String>> {
    Some(list.iter().map(|a| (format!("#{a}"), (*a).to_owned())).collect())
}

/// Whether `expr` uses the placeholder `token` (`#name` or `:value`) as a whole token.
pub(super) fn uses(expr: &str, token: &str) -> bool {
    expr.match_indices(token)
        .any(|(i, _)| !expr[i + token.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// `#name` placeholders for the attributes that the expressions use (DynamoDB refuses unused ones).
pub(super) fn names_in(exprs: &[&str], attrs: &[&str]) -> Option<HashMap<String, String>> {
    Some(
        attrs
            .iter()
            .filter(|a| exprs.iter().any(|e| uses(e, &format!("#{a}"))))
            .map(|a| (format!("#{a}"), (*a).to_owned()))
            .collect(),
    )
}

/// Drops the `:values` the expressions do not use.
pub(super) fn values_in(exprs: &[&str], mut values: Item) -> Option<Item> {
    values.retain(|k, _| exprs.iter().any(|e| uses(e, k)));
    Some(values)
}

/// The key of an item keyed by user id alone (Users, Presence).
pub(super) fn user_key(user: &UserId) -> Item {
    HashMap::from([(attr::USER_ID.to_owned(), s(user.as_str()))])
}

pub(super) fn group_key(group: &GroupId) -> Item {
    HashMap::from([(attr::GROUP_ID.to_owned(), s(group.as_str()))])
}

/// The key of a GroupMembers row.
pub(super) fn member_key(group: &GroupId, user: &UserId) -> Item {
    HashMap::from([
        (attr::GROUP_ID.to_owned(), s(group.as_str())),
        (attr::USER_ID.to_owned(), s(user.as_str())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_whole_tokens_only() {
        assert!(uses("SET #last_ts = :ts", "#last_ts"));
        assert!(!uses("SET #last_ts_x = :ts", "#last_ts"));
        assert!(uses("a = :ts AND b", ":ts"));
        assert!(!uses("a = :tsx", ":ts"));
        let names = names_in(&["SET #done = :true"], &[attr::LEASE_UNTIL, attr::DONE]).unwrap();
        assert_eq!(names.len(), 1);
        let values = values_in(
            &["SET #done = :true"],
            HashMap::from([(":true".into(), Av::Bool(true)), (":x".into(), n(1))]),
        );
        assert_eq!(values.unwrap().len(), 1);
    }
}
