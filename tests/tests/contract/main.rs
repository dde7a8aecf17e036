//! The store ports' contract (`natter_core::testing::contract`), case by case, on the in-memory fakes and on the
//! DynamoDB store against the emulator: what a unit test on the fakes proves holds on DynamoDB too. And the
//! emulator's own fidelity where natter depends on it (transactions all-or-nothing).

mod emulator;

mod memory {
    natter_core::contract_suite!(async { natter_core::testing::MemoryStore::default() });
}

mod dynamodb {
    natter_core::contract_suite!(async { natter_tests::testkit::TestStack::new(None).await.store() });
}
