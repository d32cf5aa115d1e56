//! Local programs that misuse a node's API (127.0.0.1, mDNS off): an event
//! stream held open while the node stops, a thousand idle sockets, an
//! oversized body, and a stale `node.json` whose port something else now
//! listens on. The node stops, keeps serving, refuses, and the CLI never
//! sends its token anywhere but to its node.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_tests::{NodeProc, TestHome};

fn token(home: &TestHome) -> String {
    std::fs::read_to_string(home.path("api-token"))
        .expect("a node's home has an API token")
        .trim()
        .to_owned()
}

fn api_addr(node: &NodeProc) -> String {
    node.status["api"]
        .as_str()
        .expect("the node reports its API address")
        .to_owned()
}

/// Waits up to `secs` for `child` to exit; kills it (SIGKILL) and panics
/// with `what` if it does not.
#[track_caller]
fn exits_within(child: &mut Child, secs: u64, what: &str) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -TERM {} failed", child.id());
}

// alice's node; a web-app tab (an event stream) and a request whose body
// never finishes are open on its API when it is told to stop.
#[test]
fn a_node_stops_on_sigterm_whatever_clients_hold_open() {
    let home = TestHome::init("alice");
    let mut node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let addr = api_addr(&node);
    let token = token(&home);

    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut events = BufReader::new(stream);
    let mut status = String::new();
    events.read_line(&mut status).unwrap();
    assert!(status.contains("200"), "the stream opened: {status}");

    let mut unfinished = TcpStream::connect(&addr).unwrap();
    write!(
        unfinished,
        "POST /api/posts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"text\":"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    sigterm(&node.child);
    let exit = exits_within(&mut node.child, 10, "the node with an open event stream");
    assert!(exit.success(), "the node exited with {exit}");
    // The stream was ended, not left hanging.
    let mut rest = Vec::new();
    events
        .read_to_end(&mut rest)
        .expect("the stream ends when the node stops");
    drop(unfinished);
}

// alice's node, with its open-file limit lowered to 512 (as if peers used
// the rest of the usual 1024); a local program opens 1,000 connections to
// its API and sends nothing, then alice runs `kith status`.
#[test]
fn idle_connections_are_closed_and_do_not_lock_out_the_cli() {
    const IDLE: usize = 1000;
    let home = TestHome::init("alice");
    let node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let limited = Command::new("prlimit")
        .args(["--pid", &node.child.id().to_string(), "--nofile=512:"])
        .status()
        .expect("prlimit (util-linux) runs")
        .success();
    assert!(
        limited,
        "prlimit could not lower the node's open-file limit"
    );
    let addr = api_addr(&node);

    // Connecting waits while the node's backlog is full; a connection the
    // node never takes up times out, and the attack goes on with the rest.
    let sockaddr: std::net::SocketAddr = addr.parse().unwrap();
    let opening = Instant::now();
    let mut idle = Vec::new();
    while idle.len() < IDLE && opening.elapsed() < Duration::from_secs(30) {
        if let Ok(s) = TcpStream::connect_timeout(&sockaddr, Duration::from_secs(5)) {
            idle.push(s);
        }
    }
    assert!(
        idle.len() > 512,
        "only {} idle connections opened: too few to exhaust the node",
        idle.len()
    );

    let started = Instant::now();
    let mut status = home
        .command(&["status", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kith status starts");
    let exit = exits_within(&mut status, 30, "kith status behind 1,000 idle sockets");
    let mut out = String::new();
    status
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    status
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(exit.success(), "kith status failed: {err}");
    let reply: serde_json::Value = serde_json::from_str(&out).expect("status is JSON");
    assert_eq!(reply["name"], "alice");
    // It went through the node, not around it.
    assert_eq!(reply["api"].as_str(), Some(addr.as_str()), "{out}");
    eprintln!(
        "{} idle sockets opened in {:.1} s; kith status answered in {:.1} s",
        idle.len(),
        (started - opening).as_secs_f32(),
        started.elapsed().as_secs_f32()
    );

    // The node closed the idle connections (they never sent a request).
    let first = &mut idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    match first.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("an idle connection was left open: {other:?}"),
    }
    node.stop();
}

// alice's node; a request declares a body larger than the API accepts.
#[test]
fn an_oversized_body_is_refused_with_413() {
    let home = TestHome::init("alice");
    let node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let addr = api_addr(&node);
    let token = token(&home);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Only the head: the node must refuse before reading a body it will
    // not accept.
    write!(
        s,
        "POST /api/posts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        64 << 20
    )
    .unwrap();
    let mut head = String::new();
    BufReader::new(&s).read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    node.stop();
}

// alice has no node running; her node.json is left over from one that
// crashed, and another program (a plain TCP listener, recording what it
// receives) now listens on its port, in a process that is alive.
#[test]
fn a_stale_node_file_never_gets_the_token() {
    let home = TestHome::init("alice");
    let token = {
        // A node creates the token; run one briefly so the home has one.
        let node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        node.stop();
        token(&home)
    };
    let impostor = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = impostor.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let record = received.clone();
    std::thread::spawn(move || {
        for conn in impostor.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
            let mut buf = [0u8; 4096];
            // Reads what the client sends, answers nothing, hangs up.
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                record.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    std::fs::write(
        home.path("node.json"),
        serde_json::json!({ "pid": std::process::id(), "api": format!("127.0.0.1:{port}") })
            .to_string(),
    )
    .unwrap();

    let post = home.run(&["post", "hello"]);
    let heard = String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
    assert!(
        !heard.contains(&token),
        "the impostor received the token: {heard}"
    );
    assert!(
        heard.contains("POST "),
        "the CLI asked the impostor to prove itself"
    );
    let id = post.out().to_owned();
    let feed = home.run(&["feed", "--json"]).json();
    assert!(
        feed.as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str() && p["text"] == "hello"),
        "the post is in the store: {feed}"
    );
    let heard = String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
    assert!(!heard.contains(&token), "the impostor received the token");
}
