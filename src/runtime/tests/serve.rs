//! The accept loop's admission with real sockets: a client over its share gets 429 and is
//! closed while others are served (fair between addresses), a full daemon answers 503,
//! both with Retry-After; a slow client is dropped after the header deadline and its slot
//! comes back.

use axum::routing::get;
use axum::Router;
use nordiq_runtime::serve::{serve, Limits, Serving};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A connection from `source` (any 127.0.0.0/8 address is this machine).
fn connect(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = connect_from(source, to);
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
}

/// Binds the client side to `source` before connecting, with std only: connect from a
/// listener-free socket by binding via libc.
fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let bind_to = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(source),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        assert_eq!(
            libc::bind(fd, &bind_to as *const _ as *const libc::sockaddr, len),
            0
        );
        let SocketAddr::V4(v4) = to else {
            panic!("IPv4")
        };
        let target = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        assert_eq!(
            libc::connect(fd, &target as *const _ as *const libc::sockaddr, len),
            0
        );
        TcpStream::from_raw_fd(fd)
    }
}

fn get_health(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn sheds_per_client_and_when_full_and_drops_slow_clients() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = Serving::plain(Limits {
        max_connections: 4,
        max_connections_per_client: 2,
        header_read_timeout: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(1),
    });
    let stats = serving.stats.clone();
    let shutdown = CancellationToken::new();
    let router = Router::new().route("/health", get(|| async { "ok" }));
    runtime.spawn(serve(listener, router, shutdown.clone(), serving));

    // Two idle connections from 127.0.0.2 use its share; its third is refused with 429.
    let idle: Vec<TcpStream> = (0..2).map(|_| connect([127, 0, 0, 2], addr)).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.open.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = read_all(&mut connect([127, 0, 0, 2], addr));
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    // Another address is served meanwhile.
    let answer = get_health(&mut connect([127, 0, 0, 1], addr));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Fill the daemon (4) from two more addresses: the next one gets 503.
    let more: Vec<TcpStream> = [[127, 0, 0, 3], [127, 0, 0, 4]]
        .into_iter()
        .map(|a| connect(a, addr))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.open.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = read_all(&mut connect([127, 0, 0, 5], addr));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(stats.shed_client.load(Ordering::SeqCst), 1);
    assert_eq!(stats.shed_full.load(Ordering::SeqCst), 1);

    // The idle ones sent nothing: the header deadline (1 s) closes them and frees the slots.
    let mut closed = idle.into_iter().chain(more).collect::<Vec<_>>();
    for stream in &mut closed {
        let started = Instant::now();
        let answer = read_all(stream);
        assert!(
            !answer.starts_with("HTTP/1.1 200"),
            "an idle connection got an answer: {answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not dropped in time"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.open.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline, "slots not returned");
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = get_health(&mut connect([127, 0, 0, 2], addr));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    shutdown.cancel();
}
