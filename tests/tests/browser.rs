//! The web app in real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs), driven over WebDriver,
//! against two real nodes on 127.0.0.1 (mDNS off): alice -- bob.
//!
//! Logging in with the node's one-time link, a post on alice's app showing
//! up live on bob's, a group made and its invite joined from bob's app, an
//! edit and a delete, and hostile post content that shows as text and runs
//! nothing. A screenshot of each main view is kept in
//! `target/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use kith_tests::{NodeProc, TestHome, converge};
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: Child,
    port: u16,
    _profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn driver() -> Driver {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists(),
        "{CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    converge(30, "chromedriver listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Driver {
        child,
        port,
        _profiles: tempfile::tempdir().unwrap(),
    }
}

async fn browser(d: &Driver, name: &str) -> Client {
    let profile = d._profiles.path().join(name);
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1000,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::rustls()
        .expect("a TLS setup")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a WebDriver session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits (with a deadline) until `css` matches an element whose text
/// contains `text`.
async fn wait_text(c: &Client, css: &str, text: &str, what: &str) {
    eprintln!("browser: waiting for {what}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(found) = c.find_all(Locator::Css(css)).await {
            for e in found {
                if e.text().await.is_ok_and(|t| t.contains(text)) {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_gone(c: &Client, css: &str, text: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut present = false;
        if let Ok(found) = c.find_all(Locator::Css(css)).await {
            for e in found {
                if e.text().await.is_ok_and(|t| t.contains(text)) {
                    present = true;
                }
            }
        }
        if !present {
            return;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c.wait().for_element(Locator::Css(css)).await.expect(css);
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .unwrap();
}

async fn post_from_app(c: &Client, text: &str) {
    type_into(c, "form.compose textarea", text).await;
    click(c, "form.compose button[type=submit]").await;
}

fn start(home: &TestHome, peers: &[&str]) -> NodeProc {
    let mut args = vec!["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];
    for p in peers {
        args.extend(["--peer", p]);
    }
    home.node(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_use_the_web_app() {
    let alice = TestHome::init("alice");
    let bob = TestHome::init("bob");
    let alice_id = alice.id();
    let bob_id = bob.id();
    bob.run(&["follow", &alice_id]).out();
    alice.run(&["follow", &bob_id]).out();
    let a = start(&alice, &[]);
    let mut b = start(&bob, &[&a.addr()]);
    converge(30, "bob's node is connected to alice's", || {
        let peers = bob.run(&["peers", "--json"]).json();
        (peers.as_array().unwrap().len() == 1).then_some(())
    });
    let d = driver();
    let ca = browser(&d, "alice").await;
    let cb = browser(&d, "bob").await;

    // Log in with each node's one-time link; the link is spent after.
    ca.goto(a.status["app"].as_str().unwrap()).await.unwrap();
    cb.goto(b.status["app"].as_str().unwrap()).await.unwrap();
    wait_text(&ca, "main h1", "Home", "alice's app logs in").await;
    wait_text(&cb, "main h1", "Home", "bob's app logs in").await;
    wait_text(&ca, "#netstate", "live", "alice's app listens to events").await;
    wait_text(&cb, "#netstate", "live", "bob's app listens to events").await;

    // alice posts; bob's open app shows it without a reload.
    post_from_app(&ca, "Hello from alice's browser").await;
    wait_text(
        &ca,
        "article.post",
        "Hello from alice's browser",
        "alice sees her post",
    )
    .await;
    wait_text(
        &cb,
        "article.post",
        "Hello from alice's browser",
        "bob sees it live",
    )
    .await;
    shoot(&cb, "home").await;

    // The compose box counts characters.
    type_into(&ca, "form.compose textarea", "12345").await;
    wait_text(&ca, "form.compose .count", "5 / 10000", "the count").await;
    type_into(&ca, "form.compose textarea", "").await;

    // Edit: bob sees the new text live; the thread shows the history.
    click(&ca, "article.post button.edit").await;
    type_into(
        &ca,
        "article.post textarea.edit-text",
        "Hello again, edited",
    )
    .await;
    click(&ca, "article.post form.edit-form button[type=submit]").await;
    wait_text(
        &cb,
        "article.post",
        "Hello again, edited",
        "bob sees the edit",
    )
    .await;
    click(&ca, "article.post a.time").await;
    wait_text(&ca, "main h1", "Thread", "the thread view").await;
    click(&ca, "details.history summary").await;
    wait_text(
        &ca,
        "details.history",
        "Hello from alice's browser",
        "the history",
    )
    .await;
    shoot(&ca, "thread").await;

    // A reply from the thread view: its own redraw and the live event of
    // the new post race; the page shows the reply once, not twice.
    post_from_app(&ca, "A reply from the thread").await;
    wait_text(
        &ca,
        "section.thread",
        "A reply from the thread",
        "the reply",
    )
    .await;
    // Watch the page for a bounded while: the racing redraw lands in it.
    let watch = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch {
        let copies = ca
            .execute(
                "return [...document.querySelectorAll('article.post')].filter(a => a.textContent.includes('A reply from the thread')).length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(copies, json!(1), "the reply is drawn once");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A group, an invite copied from alice's app, joined from bob's.
    ca.goto(&format!(
        "http://{}/#/groups",
        a.status["api"].as_str().unwrap()
    ))
    .await
    .unwrap();
    type_into(&ca, "#create-group input", "Climbing club").await;
    click(&ca, "#create-group button").await;
    wait_text(&ca, "main h1", "Climbing club", "the group page").await;
    click(&ca, "#invite-form button[type=submit]").await;
    // What the Copy button copies: the key field's value (the page may be
    // redrawn meanwhile by live events, so read it fresh each time).
    let deadline = Instant::now() + Duration::from_secs(30);
    let key = loop {
        let v = ca
            .execute(
                "const e = document.querySelector('input.invite-key'); return e ? e.value : '';",
                vec![],
            )
            .await
            .unwrap();
        if let Some(k) = v.as_str().filter(|k| k.starts_with("kith-invite-")) {
            break k.to_owned();
        }
        assert!(Instant::now() < deadline, "the invite key is shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ca.wait()
        .for_element(Locator::Css("img.qr"))
        .await
        .expect("a QR code is shown");
    shoot(&ca, "group").await;
    cb.goto(&format!(
        "http://{}/#/groups",
        b.status["api"].as_str().unwrap()
    ))
    .await
    .unwrap();
    type_into(&cb, "#join-group input", &key).await;
    click(&cb, "#join-group button").await;
    wait_text(&cb, "main h1", "Climbing club", "bob joined from his app").await;
    wait_text(&cb, "ul.members", "alice", "bob sees the members").await;
    shoot(&cb, "groups").await;
    wait_text(
        &ca,
        "ul.members",
        "bob",
        "alice's group page shows bob live",
    )
    .await;

    // A group post in Home says which group it is in.
    alice
        .run(&["post", "--group", "Climbing club", "Crash pads on Tuesday"])
        .out();
    ca.goto(&format!("http://{}/#/", a.status["api"].as_str().unwrap()))
        .await
        .unwrap();
    wait_text(
        &ca,
        "article.post",
        "Crash pads on Tuesday",
        "the group post in Home",
    )
    .await;
    wait_text(
        &ca,
        "article.post .group-marker",
        "in Climbing club",
        "the group post is marked with its group",
    )
    .await;

    // Hostile content from a peer shows as text and runs nothing.
    let hostile = r#"<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> <a href="javascript:window.pwned=3">x</a> javascript:window.pwned=4"#;
    bob.run(&["post", hostile]).out();
    ca.goto(&format!("http://{}/#/", a.status["api"].as_str().unwrap()))
        .await
        .unwrap();
    wait_text(
        &ca,
        "article.post .text",
        "<script>window.pwned=1</script>",
        "alice sees the text",
    )
    .await;
    let pwned = ca
        .execute("return window.pwned === undefined && document.querySelectorAll('script:not([src]), img[src=x], a[href^=javascript]').length === 0;", vec![])
        .await
        .unwrap();
    assert_eq!(
        pwned,
        json!(true),
        "nothing in the post ran or became markup"
    );
    shoot(&ca, "hostile").await;

    // Delete: gone from bob's feed live.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let posts = ca.find_all(Locator::Css("article.post")).await.unwrap();
        let mut clicked = false;
        for p in posts {
            if p.text()
                .await
                .unwrap_or_default()
                .contains("Hello again, edited")
            {
                ca.execute("window.confirm = () => true;", vec![])
                    .await
                    .unwrap();
                p.find(Locator::Css("button.delete"))
                    .await
                    .unwrap()
                    .click()
                    .await
                    .unwrap();
                clicked = true;
                break;
            }
        }
        if clicked {
            break;
        }
        assert!(Instant::now() < deadline, "alice's post is shown to delete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cb.goto(&format!("http://{}/#/", b.status["api"].as_str().unwrap()))
        .await
        .unwrap();
    wait_gone(
        &cb,
        "article.post .text",
        "Hello again, edited",
        "the delete reaches bob",
    )
    .await;

    // The other main views, for the record.
    let api = a.status["api"].as_str().unwrap();
    for (view, title, ready) in [
        ("people", "People", "ul.people li"),
        ("peers", "Peers and sync", "ul.peers li"),
        ("me", "Your profile", "form.card button"),
    ] {
        ca.goto(&format!("http://{api}/#/{view}")).await.unwrap();
        wait_text(&ca, "main h1", title, view).await;
        ca.wait().for_element(Locator::Css(ready)).await.unwrap();
        shoot(&ca, view).await;
    }
    // A narrow window still shows the app in one column.
    ca.set_window_size(380, 800).await.unwrap();
    shoot(&ca, "narrow").await;

    // bob's node dies: his open app stops saying "live".
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    wait_text(&cb, "#netstate", "offline", "bob's app sees his node stop").await;

    ca.close().await.unwrap();
    cb.close().await.unwrap();
}
