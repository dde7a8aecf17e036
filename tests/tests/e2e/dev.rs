//! `make dev` as a newcomer runs it: the natter-local binary with its embedded moto prints the ws:// line once it
//! accepts connections, two users chat through it, and Ctrl-C stops everything it started.

use natter_tests::{Client, build_binaries};
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

#[tokio::test]
async fn the_binary_prints_its_url_serves_a_chat_and_stops_on_ctrl_c() {
    build_binaries();
    let root = natter_local::process::workspace_root();
    let port = natter_local::process::free_port();
    let mut child = Command::new(root.join("target/debug/natter-local"))
        .args(["--port", &port.to_string()])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("natter-local");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = format!("ws://127.0.0.1:{port}");
    let ready = loop {
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(line) if line.contains(&url) => break line,
            Ok(_) => continue,
            Err(e) => panic!("no ready line: {e}"),
        }
    };
    assert!(ready.starts_with("natter-local ready: ws://127.0.0.1:"), "{ready}");
    let emulator = ready
        .split("emulator ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_owned();

    let mut alice = Client::connect(&url, "alice").await;
    let mut bob = Client::connect(&url, "bob").await;
    alice.send_message("hello-1", "bob", "hi bob").await;
    let m = bob.wait_for("alice's message", |v| v["type"] == "message").await;
    assert_eq!(m["body"], "hi bob");

    // Ctrl-C: natter-local stops, and the moto it started goes with it.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let port = emulator
        .rsplit(':')
        .next()
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse::<u16>()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto outlived natter-local"
    );
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
