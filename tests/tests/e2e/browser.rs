//! The reference web client (infra/local/web/) in headless Chromium: tests/browser/chat.mjs drives two browser
//! contexts through natter-local (one-on-one, group, presence, ticks, history after a reload, the error line)
//! and saves a screenshot to tests/artifacts/web-client.png. `make test` installs Debian's chromium and
//! playwright-core first (tests/browser/setup.sh).

use std::{path::PathBuf, process::Command};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_the_web_client_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run tests/browser/setup.sh (make test does)"
    );
    let (opts, logs) = natter_tests::options();
    let local = natter_local::local::Local::start(opts).await.expect("natter-local");
    let http = local.ws_url.replacen("ws://", "http://", 1);

    // The page and its token endpoint answer like a browser expects.
    let page = get(&http, "/").await;
    assert!(page.contains("<title>natter</title>"), "{page}");
    let token = get(&http, "/_natter/token?user=alice").await;
    assert!(token.contains("\"token\""), "{token}");
    let bad = get(&http, "/_natter/token?user=al%20ice").await;
    assert!(bad.contains("user"), "{bad}");

    let artifacts = root.join("tests/artifacts");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("chat.mjs")
            .arg(&http)
            .arg(&artifacts)
            .current_dir(&dir)
            .output()
            .expect("node")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    local.stop().await;
    if !(out.status.success() && stdout.contains("browser: ok")) {
        let lines = logs.lines();
        // Warnings and errors first: a long log is cut in the middle where CI shows it.
        let trouble: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .rev()
            .take(40)
            .collect();
        let tail: Vec<&String> = lines.iter().rev().take(400).rev().collect();
        panic!(
            "the browser test failed (screenshots in tests/artifacts/):\n{stdout}\n{stderr}\n\
             last warnings and errors (newest first):\n{}\nlast function logs:\n{}",
            trouble.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n"),
            tail.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    assert!(root.join("tests/artifacts/web-client.png").exists());
}

async fn get(base: &str, path: &str) -> String {
    natter_tests::http(base, "GET", path, &[], "").await.1
}
