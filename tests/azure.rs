//! Azure Blob repositories against a real Azure emulator (Azurite) on 127.0.0.1.

mod common;

use std::sync::Arc;

use common::servers::{azure_env, azurite, create_container};
use common::*;
use snapkeep::storage::object::ObjectStorage;

#[test]
fn azure_storage_conforms_and_the_cli_works_end_to_end() {
    let server = azurite();
    create_container(server.port, "conformance");
    create_container(server.port, "repos");
    // object_store reads the emulator's address from the environment; this
    // test binary holds only this test, so setting it here races nothing.
    for (k, v) in azure_env(server.port) {
        std::env::set_var(k, v);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    for url in ["az://conformance", "az://conformance/with/prefix"] {
        let store = ObjectStorage::open(url, &[]).unwrap();
        rt.block_on(snapkeep::storage::conformance::run_all(Arc::new(store)));
    }
    let t = tempfile::tempdir().unwrap();
    end_to_end(&azure_env(server.port), "az://repos/team/prod", t.path());
    let err = fails_env(
        &azure_env(server.port),
        &["repo", "init", "az://no-such-container/r"],
    );
    assert!(err.contains("does not exist"), "{err}");
    // A wrong account key: refused at once, in one line.
    let mut wrong = azure_env(server.port);
    wrong.push((
        "AZURE_STORAGE_ACCOUNT_KEY".into(),
        "d3JvbmcgYXp1cml0ZSBrZXkgZm9yIGEgdGVzdCBvZiBjcmVkZW50aWFscw==".into(),
    ));
    let err = fails_env(&wrong, &["snapshot", "list", "az://repos/team/prod"]);
    assert!(err.contains("permission denied"), "{err}");
    let err = fails_env(&wrong, &["repo", "init", "az://repos/other"]);
    assert!(err.contains("permission denied"), "{err}");
}
