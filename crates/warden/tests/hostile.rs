//! Hostile bytes on the PostgreSQL listener: each ends in an ErrorResponse or a closed
//! socket, never a hang or a crash, and the gateway keeps serving other clients.

mod common;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::{psql, raw_login, read_frame, Gateway, Login};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_wire::{ErrorResponse, Message, StartupMessage};

async fn gateway() -> (Gateway, String) {
    let gw = Gateway::start(
        r#"
[[connections]]
name = "app"
target = "postgres://127.0.0.1:5432/postgres"
allow_groups = ["agents"]
username = "postgres"
"#,
        &[],
    )
    .await
    .unwrap();
    let token = gw.issue_token("hostile-tests", "agents", "1h").unwrap();
    (gw, token)
}

/// Sends `bytes`, then reads until the gateway closes; returns what it sent back.
/// Fails if the gateway neither answers nor closes within 5 seconds.
async fn send_and_drain(gw: &Gateway, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(gw.pg).await.unwrap();
    let _ = s.write_all(bytes).await;
    // Half-close: a truncated packet followed by EOF, as from a client that gave up.
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let res = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        res.is_ok(),
        "gateway neither answered nor closed for input {:?}",
        &bytes[..bytes.len().min(16)]
    );
    out
}

fn error_code(reply: &[u8]) -> Option<String> {
    let pos = reply.iter().position(|&b| b == b'E')?;
    let raw = bytes::Bytes::copy_from_slice(&reply[pos..]);
    let (_, len) = warden_wire::scan_frame(&raw, 1 << 20).ok()??;
    let frame = warden_wire::Frame::from_raw(raw.slice(..len), 1 << 20).ok()?;
    Some(
        ErrorResponse::from_frame(&frame)
            .ok()?
            .fields
            .code()?
            .to_owned(),
    )
}

async fn still_serving(gw: &Gateway, token: &str) {
    let out = psql(&gw.dsn("app", token), &["-c", "select 'alive'"]).unwrap();
    assert_eq!(out.trim(), "alive");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_startup_packets() {
    let (gw, token) = gateway().await;
    let mut cases: Vec<Vec<u8>> = vec![
        vec![0, 0, 0],                                   // truncated length
        vec![0, 0, 0, 0],                                // length 0
        vec![0, 0, 0, 4],                                // length 4: no protocol
        vec![0x80, 0, 0, 0, 0, 3, 0, 0],                 // length 2^31
        vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],        // 2 GiB
        vec![0, 0, 0, 8, 0, 9, 0, 0],                    // protocol 9.0
        vec![0, 0, 0, 12, 0, 3, 0, 0, b'u', 0, b'x', 0], // missing terminator
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),   // wrong protocol entirely
    ];
    // SSLRequest followed by plaintext in the same packet (CVE-2021-23214 shape).
    let mut ssl_then_data = vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    ssl_then_data
        .extend_from_slice(&StartupMessage::new(vec![("user".into(), "x".into())]).encode());
    cases.push(ssl_then_data);
    for case in &cases {
        let reply = send_and_drain(&gw, case).await;
        if let Some(code) = error_code(&reply) {
            assert!(
                code == "08P01" || code == "0A000",
                "code {code} for {case:?}"
            );
        }
    }
    // An ErrorResponse, not a silent close, for a recognisably bad startup.
    let reply = send_and_drain(&gw, &[0, 0, 0, 8, 0, 9, 0, 0]).await;
    assert!(
        error_code(&reply).is_some(),
        "no error for protocol 9.0: {reply:?}"
    );
    still_serving(&gw, &token).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_after_tls_and_truncated_tls() {
    let (gw, token) = gateway().await;
    // SSLRequest, 'S', then bytes that are not a ClientHello.
    let mut s = TcpStream::connect(gw.pg).await.unwrap();
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"S");
    s.write_all(&[0x42; 512]).await.unwrap();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "gateway hung on TLS garbage");
    // A direct-TLS ClientHello header that never completes: dropped at the handshake timeout
    // at the latest, and nobody else is affected meanwhile.
    let mut half = TcpStream::connect(gw.pg).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    still_serving(&gw, &token).await;
    drop(half);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_messages() {
    let (gw, token) = gateway().await;

    // A 100 MB password message: refused by its length field, before any allocation.
    let mut s = TcpStream::connect(gw.pg).await.unwrap();
    s.write_all(&StartupMessage::new(vec![("database".into(), "app".into())]).encode())
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let f = read_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(f.tag(), b'R');
    let mut big = BytesMut::new();
    big.put_u8(b'p');
    big.put_u32(100 * 1024 * 1024);
    big.put_slice(&[b'a'; 1024]);
    let _ = s.write_all(&big).await;
    let f = read_frame(&mut s, &mut buf).await.unwrap();
    let e = ErrorResponse::from_frame(&f).unwrap();
    assert_eq!(e.fields.code(), Some("08P01"));

    // After login: a 100 MB Query (over the 64 MiB default) ends the session with 08P01.
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &token).await.unwrap() else {
        panic!("login failed")
    };
    let mut q = BytesMut::new();
    q.put_u8(b'Q');
    q.put_u32(100 * 1024 * 1024);
    let _ = s.write_all(&q).await;
    let mut buf = BytesMut::new();
    let f = read_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(
        ErrorResponse::from_frame(&f).unwrap().fields.code(),
        Some("08P01")
    );

    // Length fields of 0 and 3 after login.
    for len in [0u32, 3] {
        let Login::Ok(mut s) = raw_login(gw.pg, "app", &token).await.unwrap() else {
            panic!("login failed")
        };
        let mut m = BytesMut::new();
        m.put_u8(b'Q');
        m.put_u32(len);
        let _ = s.write_all(&m).await;
        let mut buf = BytesMut::new();
        let f = read_frame(&mut s, &mut buf).await.unwrap();
        assert_eq!(
            ErrorResponse::from_frame(&f).unwrap().fields.code(),
            Some("08P01")
        );
    }

    // A Query whose text is not NUL-terminated / not UTF-8.
    for body in [&b"select 1"[..], &b"select \xff\xfe\0"[..]] {
        let Login::Ok(mut s) = raw_login(gw.pg, "app", &token).await.unwrap() else {
            panic!("login failed")
        };
        let mut m = BytesMut::new();
        m.put_u8(b'Q');
        m.put_u32(4 + body.len() as u32);
        m.put_slice(body);
        let _ = s.write_all(&m).await;
        let mut buf = BytesMut::new();
        let f = read_frame(&mut s, &mut buf).await.unwrap();
        assert_eq!(f.tag(), b'E');
    }

    // Wrong message instead of the password.
    let mut s = TcpStream::connect(gw.pg).await.unwrap();
    s.write_all(&StartupMessage::new(vec![("database".into(), "app".into())]).encode())
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    read_frame(&mut s, &mut buf).await.unwrap();
    let mut m = BytesMut::new();
    m.put_u8(b'Q');
    m.put_u32(13);
    m.put_slice(b"select 1\0");
    s.write_all(&m).await.unwrap();
    let f = read_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(
        ErrorResponse::from_frame(&f).unwrap().fields.code(),
        Some("08P01")
    );

    // A client that connects and says nothing is dropped after the handshake timeout;
    // many of them at once do not block others.
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(gw.pg).await.unwrap());
    }
    still_serving(&gw, &token).await;
    drop(idle);
    still_serving(&gw, &token).await;
    assert!(!gw.logs().contains("panicked"), "gateway panicked");
}

#[tokio::test(flavor = "multi_thread")]
async fn uninspectable_requests_are_refused() {
    let (gw, token) = gateway().await;
    // FunctionCall ('F') carries no SQL to inspect.
    let Login::Ok(mut s) = raw_login(gw.pg, "app", &token).await.unwrap() else {
        panic!("login failed")
    };
    let mut m = BytesMut::new();
    m.put_u8(b'F');
    m.put_u32(4 + 4 + 2 + 2 + 2);
    m.put_u32(1299); // now()
    m.put_u16(0);
    m.put_u16(0);
    m.put_u16(0);
    s.write_all(&m).await.unwrap();
    let mut buf = BytesMut::new();
    let f = read_frame(&mut s, &mut buf).await.unwrap();
    assert_eq!(
        ErrorResponse::from_frame(&f).unwrap().fields.code(),
        Some("0A000")
    );

    // standard_conforming_strings=off would let the target read literals differently.
    let dsn = format!(
        "{} options='-c standard_conforming_strings=off'",
        gw.dsn("app", &token)
    );
    let err = psql(&dsn, &["-c", "select 1"]).unwrap_err().to_string();
    assert!(err.contains("standard_conforming_strings"), "{err}");
    still_serving(&gw, &token).await;
}
