//! Silent connections cannot hold `serve`: one that never finishes a
//! request's head is closed after the header timeout, one that stops
//! reading its answers after the write timeout, and no more than
//! `max_connections` are open at once (the next is served as soon as one
//! closes). Raw sockets play the silent clients; reqwest the real one.

use std::time::Duration;

use domain::Scope;
use infrastructure::testing::TestStore;
use server::Limits;
use tests::on_both_backends;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::Running;

/// A guard on every wait, so that a broken limit fails rather than hangs.
const GUARD: Duration = Duration::from_secs(30);

/// A plain client, as the other tests make one.
async fn get(url: String) -> reqwest::Result<reqwest::StatusCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::new().get(url).send().await?.status())
}

/// Sends a whole `GET /healthz` on `conn`, keeping it open, and reads the
/// answer's status line.
async fn healthz_on(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(GUARD, conn.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

async fn a_head_that_never_ends_is_cut_off(store: &TestStore) {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = Running::start_with(store, Scope::Read, limits).await;
    let address = server.url.trim_start_matches("http://").to_owned();

    // Half a head, then silence: the server closes the connection
    // without serving it.
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(GUARD, slow.read_to_end(&mut rest))
        .await
        .expect("the server closes a connection whose head never ends");
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains(" 200 "),
        "a half head was served: {}",
        String::from_utf8_lossy(&rest)
    );

    // Idle after a request counts too: a kept-alive connection that
    // sends nothing more is closed.
    let mut idle = TcpStream::connect(&address).await.unwrap();
    assert_eq!(healthz_on(&mut idle).await, "HTTP/1.1 200 OK");
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(GUARD, idle.read(&mut buf))
            .await
            .expect("the server closes an idle connection")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
    }

    // A client that speaks in time is served as ever.
    let answer = get(format!("{}/healthz", server.url)).await.unwrap();
    assert_eq!(answer, 200);
    server.stop().await;
}

async fn connections_beyond_the_limit_wait_for_a_place(store: &TestStore) {
    let limits = Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let server = Running::start_with(store, Scope::Read, limits).await;
    let address = server.url.trim_start_matches("http://").to_owned();

    // Two connections served once and kept open hold both places.
    let mut first = TcpStream::connect(&address).await.unwrap();
    let mut second = TcpStream::connect(&address).await.unwrap();
    assert_eq!(healthz_on(&mut first).await, "HTTP/1.1 200 OK");
    assert_eq!(healthz_on(&mut second).await, "HTTP/1.1 200 OK");

    // A third client waits: it is not served while both are open.
    let url = format!("{}/healthz", server.url);
    let mut third = tokio::spawn(get(url));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut third)
            .await
            .is_err(),
        "a third connection was served beyond the limit of two"
    );

    // One closes, and the waiting client is served.
    drop(first);
    let status = tokio::time::timeout(GUARD, third)
        .await
        .expect("served once a place is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    drop(second);
    server.stop().await;
}

async fn a_client_that_stops_reading_is_cut_off(store: &TestStore) {
    let limits = Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(120),
        write_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = Running::start_with(store, Scope::Read, limits).await;
    let address = server.url.trim_start_matches("http://").to_owned();

    // A client asks for the API document (tens of kilobytes) again and
    // again on its one connection, and never reads an answer: the socket
    // buffers fill, and the server's writes wait on it.
    let request = format!(
        "GET /api/v1/openapi.json HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\r\n",
        server.token
    );
    let (deaf_ear, mut deaf_mouth) = TcpStream::connect(&address).await.unwrap().into_split();
    let asking = tokio::spawn(async move {
        for _ in 0..10_000 {
            if deaf_mouth.write_all(request.as_bytes()).await.is_err() {
                break;
            }
        }
        deaf_mouth
    });

    // It holds the one place until the server gives up writing to it; then
    // a client that reads is served.
    let status = tokio::time::timeout(GUARD, get(format!("{}/healthz", server.url)))
        .await
        .expect("served once the connection that stopped reading is closed")
        .unwrap();
    assert_eq!(status, 200);
    drop(deaf_ear);
    asking.abort();
    server.stop().await;
}

on_both_backends!(
    a_head_that_never_ends_is_cut_off,
    connections_beyond_the_limit_wait_for_a_place,
    a_client_that_stops_reading_is_cut_off,
);
