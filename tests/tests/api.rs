//! The local API of a real node (127.0.0.1, mDNS off): every route answers
//! with success, refuses bad input with a JSON 4xx that says what was wrong,
//! refuses a missing or wrong token with 401 and a foreign Host with 403;
//! the event stream delivers live events; the OpenAPI description matches
//! the routes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kith_tests::{NodeProc, TestHome};
use serde_json::{Value, json};

struct Api {
    addr: String,
    token: String,
}

struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl Api {
    fn of(home: &TestHome, node: &NodeProc) -> Api {
        Api {
            addr: node.status["api"].as_str().unwrap().to_owned(),
            token: std::fs::read_to_string(home.path("api-token"))
                .unwrap()
                .trim()
                .to_owned(),
        }
    }

    /// A raw HTTP/1.1 request, so that tests control every header.
    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        } else {
            req.push_str("Content-Length: 0\r\n");
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status: u16 = text[9..12].parse().unwrap();
        let body_start = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
        let mut body = text[body_start..].to_owned();
        if text[..body_start]
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Answer {
            status,
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
            text,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let host = self.addr.clone();
        let auth = format!("Bearer {}", self.token);
        let b = body.map(|b| b.to_string());
        self.raw(
            method,
            path,
            &[("Host", &host), ("Authorization", &auth)],
            b.as_deref(),
        )
    }

    #[track_caller]
    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let a = self.call(method, path, body);
        assert!(
            (200..300).contains(&a.status),
            "{method} {path}: {}",
            a.text
        );
        a.body
    }

    #[track_caller]
    fn bad(&self, method: &str, path: &str, body: Option<Value>, needle: &str) {
        let a = self.call(method, path, body);
        assert!(
            (400..500).contains(&a.status),
            "{method} {path} should be refused: {}",
            a.text
        );
        let msg = a.body["message"].as_str().unwrap_or_default();
        assert!(a.body["code"].is_string(), "{method} {path}: {}", a.text);
        assert!(
            msg.contains(needle),
            "{method} {path}: message {msg:?} lacks {needle:?}"
        );
    }
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\r\n") {
        let Ok(n) = usize::from_str_radix(rest[..i].trim(), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(&rest[i + 2..i + 2 + n]);
        rest = &rest[i + 2 + n + 2..];
    }
    out
}

#[test]
fn every_route_succeeds_refuses_bad_input_and_guards_token_and_host() {
    let home = TestHome::init("alice");
    let node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let api = Api::of(&home, &node);
    let bob = TestHome::init("bob");
    let bob_id = bob.id();

    // Success, and bad input, route by route.
    assert_eq!(api.ok("GET", "/api/status", None)["name"], "alice");
    assert_eq!(api.ok("GET", "/api/whoami", None)["name"], "alice");
    let post = api.ok("POST", "/api/posts", Some(json!({ "text": "hello API" })))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.bad("POST", "/api/posts", Some(json!({ "text": "  " })), "empty");
    api.bad(
        "POST",
        "/api/posts",
        Some(json!({ "txt": "x" })),
        "bad request body",
    );
    api.bad(
        "POST",
        "/api/posts",
        Some(json!({ "text": "x".repeat(10_001) })),
        "the limit is 10000",
    );
    let feed = api.ok("GET", "/api/feed?limit=10", None);
    assert_eq!(feed[0]["id"], post.as_str());
    api.bad("GET", "/api/feed?limit=0", None, "limit must be");
    api.bad("GET", "/api/feed?colour=red", None, "bad query");
    api.bad("GET", "/api/feed?before=nope", None, "not a post id");
    let thread = api.ok("GET", &format!("/api/posts/{post}"), None);
    assert_eq!(thread[0]["text"], "hello API");
    api.bad(
        "GET",
        "/api/posts/aaaaaaaaaaaaaaaaaaaaaaaaaa",
        None,
        "no post",
    );
    api.bad("GET", "/api/posts/xyz", None, "not a post id");
    api.ok(
        "PUT",
        &format!("/api/posts/{post}"),
        Some(json!({ "text": "hello, edited" })),
    );
    api.bad(
        "PUT",
        &format!("/api/posts/{post}"),
        Some(json!({ "text": "" })),
        "empty",
    );
    let history = api.ok("GET", &format!("/api/posts/{post}/history"), None);
    assert_eq!(history.as_array().unwrap().len(), 2);
    api.bad("GET", "/api/posts/bad/history", None, "not a post id");
    assert_eq!(
        api.ok("PUT", &format!("/api/posts/{post}/reactions/🎉"), None)["changed"],
        true
    );
    api.bad(
        "PUT",
        &format!("/api/posts/{post}/reactions/a%20b"),
        None,
        "reaction",
    );
    assert_eq!(
        api.ok("DELETE", &format!("/api/posts/{post}/reactions/🎉"), None)["changed"],
        true
    );
    api.bad(
        "DELETE",
        "/api/posts/nope/reactions/x",
        None,
        "not a post id",
    );
    assert_eq!(api.ok("GET", "/api/profile", None)["name"], "alice");
    assert_eq!(
        api.ok("PUT", "/api/profile", Some(json!({ "bio": "engineer" })))["bio"],
        "engineer"
    );
    api.bad(
        "PUT",
        "/api/profile",
        Some(json!({ "age": 3 })),
        "bad request body",
    );
    let followed = api.ok(
        "PUT",
        &format!("/api/people/{bob_id}/follow"),
        Some(json!({ "labels": ["vendor"] })),
    );
    assert_eq!(followed["following"], true);
    api.bad("PUT", "/api/people/bob/follow", None, "not a kith id");
    assert_eq!(
        api.ok("GET", "/api/people?label=vendor", None)[0]["id"],
        bob_id.as_str()
    );
    api.bad("GET", "/api/people?label=vendor&x=1", None, "bad query");
    assert_eq!(
        api.ok("GET", &format!("/api/people/{bob_id}"), None)["labels"][0],
        "vendor"
    );
    api.bad("GET", "/api/people/did:key:zzz", None, "not an ed25519");
    let labelled = api.ok(
        "POST",
        &format!("/api/people/{bob_id}/labels"),
        Some(json!({ "add": ["customer"], "remove": ["vendor"] })),
    );
    assert_eq!(labelled["labels"], json!(["customer"]));
    api.bad(
        "POST",
        &format!("/api/people/{bob_id}/labels"),
        Some(json!({ "add": ["Not A Label!"] })),
        "label",
    );
    assert_eq!(
        api.ok("DELETE", &format!("/api/people/{bob_id}/follow"), None)["following"],
        false
    );
    api.bad("DELETE", "/api/people/x/follow", None, "not a kith id");
    assert_eq!(
        api.ok("PUT", &format!("/api/people/{bob_id}/block"), None)["blocked"],
        true
    );
    api.bad("PUT", "/api/people/x/block", None, "not a kith id");
    assert_eq!(
        api.ok("DELETE", &format!("/api/people/{bob_id}/block"), None)["blocked"],
        false
    );
    api.bad("DELETE", "/api/people/x/block", None, "not a kith id");

    let group = api.ok(
        "POST",
        "/api/groups",
        Some(json!({ "name": "suppliers", "about": "parts" })),
    );
    let g = group["id"].as_str().unwrap().to_owned();
    api.bad(
        "POST",
        "/api/groups",
        Some(json!({ "name": "" })),
        "needs a name",
    );
    assert_eq!(api.ok("GET", "/api/groups", None)[0]["id"], g.as_str());
    assert_eq!(
        api.ok("GET", &format!("/api/groups/{g}"), None)["role"],
        "admin"
    );
    assert_eq!(
        api.ok("GET", "/api/groups/suppliers", None)["id"],
        g.as_str()
    );
    api.bad("GET", "/api/groups/nobody", None, "no group of yours");
    api.ok(
        "PUT",
        &format!("/api/groups/{g}"),
        Some(json!({ "name": "suppliers and us" })),
    );
    api.bad(
        "PUT",
        &format!("/api/groups/{g}"),
        Some(json!({ "name": "" })),
        "needs a name",
    );
    let invite = api.ok(
        "POST",
        &format!("/api/groups/{g}/invites"),
        Some(json!({ "uses": 2 })),
    );
    assert!(invite["key"].as_str().unwrap().starts_with("kith-invite-"));
    assert!(invite["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    api.bad(
        "POST",
        &format!("/api/groups/{g}/invites"),
        Some(json!({ "uses": 0 })),
        "admits 1 to",
    );
    // A body the route cannot read is a 400 in JSON, like every error,
    // for optional bodies too (axum's own refusals are plain text, 422).
    api.bad(
        "POST",
        &format!("/api/groups/{g}/invites"),
        Some(json!({ "uses": 2, "colour": "red" })),
        "unknown field",
    );
    let garbled = api.raw(
        "POST",
        &format!("/api/groups/{g}/invites"),
        &[
            ("Host", &api.addr.clone()),
            ("Authorization", &format!("Bearer {}", api.token)),
        ],
        Some("\u{0}"),
    );
    assert_eq!(garbled.status, 400, "{}", garbled.text);
    assert_eq!(garbled.body["code"], "invalid", "{}", garbled.text);
    let invites = api.ok("GET", &format!("/api/groups/{g}/invites"), None);
    let invite_id = invites[0]["id"].as_str().unwrap().to_owned();
    api.bad(
        "GET",
        "/api/groups/nobody/invites",
        None,
        "no group of yours",
    );
    api.ok(
        "DELETE",
        &format!("/api/groups/{g}/invites/{invite_id}"),
        None,
    );
    api.bad(
        "DELETE",
        &format!("/api/groups/{g}/invites/{invite_id}"),
        None,
        "already revoked",
    );
    api.bad(
        "DELETE",
        &format!("/api/groups/{g}/members/{bob_id}"),
        None,
        "not a member",
    );
    api.bad(
        "POST",
        &format!("/api/groups/{g}/members/{bob_id}/promote"),
        None,
        "not a member",
    );
    api.bad(
        "POST",
        "/api/groups/join",
        Some(json!({ "key": "kith-invite-zz" })),
        "invite key",
    );
    api.bad(
        "POST",
        "/api/groups/join",
        Some(json!({})),
        "bad request body",
    );
    // Posting into the group, then leaving it.
    api.ok(
        "POST",
        "/api/posts",
        Some(json!({ "text": "in the group", "group": g })),
    );
    assert_eq!(
        api.ok("GET", &format!("/api/feed?group={g}"), None)[0]["text"],
        "in the group"
    );
    // Home: the group's post and the public ones, newest first; a page
    // further down goes on from the last one shown.
    let home = api.ok("GET", "/api/feed?home=true&limit=1", None);
    assert_eq!(home[0]["text"], "in the group");
    let next = home[0]["id"].as_str().unwrap();
    let older = api.ok("GET", &format!("/api/feed?home=true&before={next}"), None);
    assert_eq!(older[0]["text"], "hello, edited");
    api.bad(
        "GET",
        &format!("/api/feed?home=true&group={g}"),
        None,
        "neither",
    );
    assert!(api.ok("POST", &format!("/api/groups/{g}/leave"), None)["role"].is_null());
    api.bad(
        "POST",
        &format!("/api/groups/{g}/leave"),
        None,
        "not a member",
    );
    assert!(
        api.ok("GET", "/api/peers", None)
            .as_array()
            .unwrap()
            .is_empty()
    );
    api.ok(
        "POST",
        "/api/peers",
        Some(json!({ "address": "/ip4/127.0.0.1/tcp/9" })),
    );
    api.bad(
        "POST",
        "/api/peers",
        Some(json!({ "address": "not an address" })),
        "not a multiaddr",
    );
    let export = api.call("GET", "/api/export", None);
    assert_eq!(export.status, 200);
    assert!(export.text.contains("application/octet-stream"));
    let public = api.call("GET", "/api/export?public=true", None);
    assert_eq!(public.status, 200);
    assert!(
        public.text.len() < export.text.len(),
        "less than everything"
    );
    api.bad("GET", "/api/export?path=/tmp/x", None, "bad query");
    let spec = api.ok("GET", "/api/openapi.json", None);
    assert_eq!(spec["openapi"], "3.1.0");
    let url = api.ok("POST", "/api/login-url", None)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = url.split("#login=").nth(1).unwrap().to_owned();
    let login = api.raw(
        "POST",
        "/api/login",
        &[("Host", &api.addr)],
        Some(&json!({ "code": code }).to_string()),
    );
    assert_eq!(login.body["token"], api.token.as_str(), "{}", login.text);
    let again = api.raw(
        "POST",
        "/api/login",
        &[("Host", &api.addr)],
        Some(&json!({ "code": code }).to_string()),
    );
    assert_eq!(again.status, 401, "a login code works once: {}", again.text);
    api.bad("POST", "/api/login", Some(json!({ "nope": 1 })), "code");
    // The hello proves the token to whoever asks, without the token.
    let challenge = "c".repeat(64);
    let hello = api.raw(
        "POST",
        "/api/hello",
        &[("Host", &api.addr)],
        Some(&json!({ "challenge": challenge }).to_string()),
    );
    let proof = hello.body["proof"].as_str().unwrap_or_default();
    assert!(
        kith_node::api::hello::verify(&api.token, &challenge, proof),
        "{}",
        hello.text
    );
    assert!(!hello.text.contains(&api.token));
    api.bad(
        "POST",
        "/api/hello",
        Some(json!({ "challenge": "short" })),
        "challenge",
    );
    api.bad("GET", "/api/no-such-route", None, "no such route");
    let call = api.ok("POST", "/api/call", Some(json!({ "call": "whoami" })));
    assert_eq!(call["reply"], "whoami");
    api.bad("POST", "/api/call", Some(json!({ "call": "fly" })), "");
    api.ok("DELETE", &format!("/api/posts/{post}"), None);
    api.bad("DELETE", &format!("/api/posts/{post}"), None, "deleted");

    // Every route refuses a missing token and a wrong token (but the login
    // and the hello, which need none), and every route a foreign Host.
    let spec: Value = spec;
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", &post)
                .replace("{emoji}", "x")
                .replace("{group}", &g)
                .replace("{invite}", &invite_id)
                .replace("{member}", &bob_id);
            let m = method.to_ascii_uppercase();
            let host = api.addr.clone();
            if path != "/api/login" && path != "/api/hello" {
                let none = api.raw(&m, &concrete, &[("Host", &host)], None);
                assert_eq!(
                    none.status, 401,
                    "{m} {path} without a token: {}",
                    none.text
                );
                assert_eq!(none.body["code"], "unauthorized");
                let wrong = api.raw(
                    &m,
                    &concrete,
                    &[("Host", &host), ("Authorization", "Bearer not-the-token")],
                    None,
                );
                assert_eq!(wrong.status, 401, "{m} {path} with a wrong token");
            }
            let auth = format!("Bearer {}", api.token);
            for foreign in ["evil.example:80", "attacker.test", "127.0.0.1.nip.io"] {
                let a = api.raw(
                    &m,
                    &concrete,
                    &[("Host", foreign), ("Authorization", &auth)],
                    None,
                );
                assert_eq!(a.status, 403, "{m} {path} for host {foreign}: {}", a.text);
                assert_eq!(a.body["code"], "forbidden_host");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, kith_node_routes(), "every route was checked");
    // No permissive CORS: nothing invites another origin in.
    let cors = api.raw(
        "OPTIONS",
        "/api/status",
        &[("Host", &api.addr), ("Origin", "http://evil.example")],
        None,
    );
    assert!(
        !cors
            .text
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{}",
        cors.text
    );
}

/// How many routes the node declares.
fn kith_node_routes() -> usize {
    kith_node::api::ROUTES.len()
}

#[test]
fn the_event_stream_delivers_live_events_to_token_holders_only() {
    let home = TestHome::init("alice");
    let node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let api = Api::of(&home, &node);
    let mut s = TcpStream::connect(&api.addr).unwrap();
    s.write_all(
        format!(
            "GET /api/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
            api.addr, api.token
        )
        .as_bytes(),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("200"), "{line}");
    let post = api.ok("POST", "/api/posts", Some(json!({ "text": "live!" })))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.contains(&post) {
        assert!(Instant::now() < deadline, "no post event: {seen}");
        let mut l = String::new();
        match reader.read_line(&mut l) {
            Ok(_) => seen.push_str(&l),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(seen.contains("event: post"), "{seen}");
    let none = api.raw("GET", "/api/events", &[("Host", &api.addr)], None);
    assert_eq!(none.status, 401);
}

#[test]
fn the_app_is_served_with_a_strict_content_security_policy() {
    let home = TestHome::init("alice");
    let node = home.node(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let api = Api::of(&home, &node);
    let app = node.status["app"].as_str().unwrap();
    assert!(
        app.contains("#login="),
        "the node prints a login URL: {app}"
    );
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let a = api.raw("GET", path, &[("Host", &api.addr)], None);
        assert_eq!(a.status, 200, "{path}");
        let head = a.text.to_ascii_lowercase();
        assert!(head.contains(&format!("content-type: {kind}")), "{path}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"));
        let foreign = api.raw("GET", path, &[("Host", "evil.example")], None);
        assert_eq!(foreign.status, 403, "{path} for a foreign host");
    }
}
