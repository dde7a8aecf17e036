//! natter-local's emulator keeps DynamoDB's transaction semantics (infra/local/src/emulator/moto_serve.py): a cancelled
//! TransactWriteItems leaves every item it named as it was and every other item alone, on tables with and without
//! a sort key, and an applied one writes all of its items. The wrapper backs up only the named items (moto's own
//! backup copied whole tables per operation, which made long runs swap); these tests hold the rollback to the
//! all-or-nothing DynamoDB promises.

use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement, KeyType, Put,
        ScalarAttributeType, Select, TransactWriteItem, Update,
    },
};
use natter_tests::testkit;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

async fn client() -> Client {
    let endpoint = tokio::task::spawn_blocking(testkit::emulator).await.expect("emulator");
    Client::new(&natter_local::emulator::sdk_for(&endpoint).await)
}

/// A fresh table keyed by `pk` (and `sk` when `sorted`), both strings.
async fn table(db: &Client, name: &str, sorted: bool) -> String {
    let name = format!("emu{}_{name}", std::process::id());
    let mut req = db
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attr, kind) in [("pk", KeyType::Hash), ("sk", KeyType::Range)]
        .into_iter()
        .take(1 + sorted as usize)
    {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(attr)
                    .key_type(kind)
                    .build()
                    .unwrap(),
            );
    }
    req.send().await.expect("create table");
    name
}

fn key(sorted: bool, pk: &str) -> Item {
    let mut k = HashMap::from([("pk".to_owned(), s(pk))]);
    if sorted {
        k.insert("sk".to_owned(), s("0"));
    }
    k
}

fn item(sorted: bool, pk: &str, v: &str) -> Item {
    let mut i = key(sorted, pk);
    i.insert("v".to_owned(), s(v));
    i
}

async fn put(db: &Client, t: &str, i: Item) {
    db.put_item().table_name(t).set_item(Some(i)).send().await.expect("put");
}

/// `v` of the item at `pk`, or None when there is no item.
async fn value(db: &Client, t: &str, sorted: bool, pk: &str) -> Option<String> {
    let out = db
        .get_item()
        .table_name(t)
        .set_key(Some(key(sorted, pk)))
        .consistent_read(true)
        .send()
        .await
        .expect("get");
    out.item.map(|i| i["v"].as_s().expect("v").clone())
}

async fn count(db: &Client, t: &str) -> i32 {
    db.scan()
        .table_name(t)
        .select(Select::Count)
        .send()
        .await
        .expect("scan")
        .count
}

fn put_op(t: &str, i: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(Put::builder().table_name(t).set_item(Some(i)).build().unwrap())
        .build()
}

fn update_op(t: &str, k: Item, v: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(t)
                .set_key(Some(k))
                .update_expression("SET v = :v")
                .expression_attribute_values(":v", s(v))
                .build()
                .unwrap(),
        )
        .build()
}

fn delete_op(t: &str, k: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .delete(Delete::builder().table_name(t).set_key(Some(k)).build().unwrap())
        .build()
}

fn must_exist(t: &str, k: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name(t)
                .set_key(Some(k))
                .condition_expression("attribute_exists(pk)")
                .build()
                .unwrap(),
        )
        .build()
}

async fn cancelled_transaction_changes_nothing(sorted: bool) {
    let db = client().await;
    let t = table(&db, if sorted { "sorted" } else { "plain" }, sorted).await;
    for i in 0..200 {
        put(&db, &t, item(sorted, &format!("bystander{i}"), "kept")).await;
    }
    put(&db, &t, item(sorted, "updated", "before")).await;
    put(&db, &t, item(sorted, "deleted", "before")).await;

    // A put, an update and a delete, then a condition that fails: DynamoDB cancels all of it.
    let out = db
        .transact_write_items()
        .transact_items(put_op(&t, item(sorted, "created", "new")))
        .transact_items(update_op(&t, key(sorted, "updated"), "after"))
        .transact_items(delete_op(&t, key(sorted, "deleted")))
        .transact_items(must_exist(&t, key(sorted, "missing")))
        .send()
        .await;
    let err = out.expect_err("the condition fails, so the transaction is cancelled");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_transaction_canceled_exception()),
        "{err:?}"
    );
    assert_eq!(value(&db, &t, sorted, "created").await, None, "the put was undone");
    assert_eq!(
        value(&db, &t, sorted, "updated").await.as_deref(),
        Some("before"),
        "the update was undone"
    );
    assert_eq!(
        value(&db, &t, sorted, "deleted").await.as_deref(),
        Some("before"),
        "the delete was undone"
    );
    assert_eq!(count(&db, &t).await, 202, "no other item appeared or went");
    assert_eq!(value(&db, &t, sorted, "bystander7").await.as_deref(), Some("kept"));

    // The same writes without the failing condition all land.
    db.transact_write_items()
        .transact_items(put_op(&t, item(sorted, "created", "new")))
        .transact_items(update_op(&t, key(sorted, "updated"), "after"))
        .transact_items(delete_op(&t, key(sorted, "deleted")))
        .transact_items(must_exist(&t, key(sorted, "bystander0")))
        .send()
        .await
        .expect("an applied transaction");
    assert_eq!(value(&db, &t, sorted, "created").await.as_deref(), Some("new"));
    assert_eq!(value(&db, &t, sorted, "updated").await.as_deref(), Some("after"));
    assert_eq!(value(&db, &t, sorted, "deleted").await, None);
    assert_eq!(count(&db, &t).await, 202);
}

#[tokio::test]
async fn a_cancelled_transaction_leaves_every_item_as_it_was_on_a_table_with_a_sort_key() {
    cancelled_transaction_changes_nothing(true).await;
}

#[tokio::test]
async fn a_cancelled_transaction_leaves_every_item_as_it_was_on_a_table_without_a_sort_key() {
    cancelled_transaction_changes_nothing(false).await;
}

#[tokio::test]
async fn an_item_named_twice_cancels_the_transaction_and_changes_nothing() {
    let db = client().await;
    let t = table(&db, "twice", false).await;
    put(&db, &t, item(false, "a", "before")).await;
    let err = db
        .transact_write_items()
        .transact_items(put_op(&t, item(false, "b", "new")))
        .transact_items(update_op(&t, key(false, "a"), "first"))
        .transact_items(update_op(&t, key(false, "a"), "second"))
        .send()
        .await
        .expect_err("DynamoDB refuses two operations on one item");
    assert!(err.as_service_error().is_some(), "{err:?}");
    assert_eq!(value(&db, &t, false, "a").await.as_deref(), Some("before"));
    assert_eq!(value(&db, &t, false, "b").await, None);
}
