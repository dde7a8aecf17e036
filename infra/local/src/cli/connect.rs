//! `natter-local connect USER`: a line-oriented client. Each line typed is sent as a text frame; each frame
//! received is printed as a line.

use futures::{SinkExt, StreamExt};
use std::process::ExitCode;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

/// A line-oriented client: stdin lines out as text frames, frames in printed as lines.
pub async fn connect(url: &str, token: &str) -> ExitCode {
    let (ws, _) = match tokio_tungstenite::connect_async(format!("{url}/?token={token}")).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("natter-local: cannot connect to {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("connected to {url}; type frames, e.g. {{\"action\":\"sync\"}}");
    let (mut sink, mut stream) = ws.split();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(l)) if !l.trim().is_empty() => {
                    if sink.send(Message::Text(l.into())).await.is_err() {
                        return ExitCode::FAILURE;
                    }
                }
                Ok(Some(_)) => {}
                _ => return ExitCode::SUCCESS,
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => println!("{t}"),
                Some(Ok(Message::Close(f))) => {
                    eprintln!("closed: {f:?}");
                    return ExitCode::SUCCESS;
                }
                Some(Ok(_)) => {}
                _ => return ExitCode::FAILURE,
            },
        }
    }
}
