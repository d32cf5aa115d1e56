//! `kith service`: the systemd user unit it writes runs this node. CI has
//! no systemd user session, so the test starts the unit's command line the
//! way systemd would read it, and checks what install, status and uninstall
//! say without one.

use kith_tests::{NodeProc, Run, TestHome, converge, kith_bin};

/// An `ExecStart=` line split into words as systemd does: double quotes
/// with `\"` and `\\` inside, `%%` and `$$` for a plain `%` and `$`.
fn exec_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return words;
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => word.extend(chars.next()),
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word.replace("%%", "%").replace("$$", "$"));
    }
}

#[test]
fn the_unit_runs_this_node_on_this_home_and_uninstall_removes_it() {
    let config = tempfile::tempdir().unwrap();
    let home = TestHome::in_dir(config.path().join("a kith home, 100% $HOME"));
    home.run(&["init", "--name", "ada"]).out();
    let kith = |args: &[&str]| -> Run {
        home.command(args)
            .env("XDG_CONFIG_HOME", config.path())
            .output()
            .expect("kith runs")
            .into()
    };
    let unit = config.path().join("systemd/user/kith.service");

    // A wrong node option is caught now, not at every start.
    kith(&["service", "install", "--no-start", "--", "--no-such-option"])
        .fails_with("the node options for the unit are wrong");
    assert!(!unit.exists(), "nothing written");
    let status = kith(&["service", "status", "--json"]).json();
    assert_eq!(status["installed"], false, "{status}");

    let node_options = ["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];
    let mut args = vec!["service", "install", "--no-start", "--"];
    args.extend(node_options);
    kith(&args).out();
    let text = std::fs::read_to_string(&unit).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words = exec_words(exec);
    let home_dir = std::path::absolute(&home.dir).unwrap();
    assert_eq!(words[0], kith_bin().to_str().unwrap());
    assert_eq!(words[1..4], ["--home", home_dir.to_str().unwrap(), "node"]);
    assert_eq!(words[4..], node_options);
    let status = kith(&["service", "status", "--json"]).json();
    assert_eq!(status["installed"], true, "{status}");
    assert_eq!(status["exec_start"], exec, "{status}");

    // What systemd would start: the node on this home.
    let child = std::process::Command::new(&words[0])
        .args(&words[1..])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the unit's command starts");
    // Stopped with SIGTERM as systemd stops it, also if the test fails.
    let node = NodeProc {
        child,
        status: serde_json::Value::Null,
    };
    // The node file appears once the node holds the store (polling with
    // commands would contend with the starting node for it).
    converge(60, "the unit's node starts on this home", || {
        home.path("node.json").exists().then_some(())
    });
    let answered = home.run(&["status", "--json"]).json();
    assert!(
        !answered["listen"].as_array().unwrap().is_empty(),
        "{answered}"
    );
    assert_eq!(answered["identity"], home.id(), "{answered}");
    node.stop();

    // A unit someone else wrote under the same name is neither replaced
    // nor removed.
    let theirs = "[Service]\nExecStart=/usr/bin/true\n";
    std::fs::write(&unit, theirs).unwrap();
    kith(&["service", "install", "--no-start"]).fails_with("was not written by kith");
    kith(&["service", "uninstall"]).fails_with("was not written by kith");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), theirs);
    std::fs::write(&unit, &text).unwrap();

    // Without a systemd user session, uninstall still removes the unit.
    kith(&["service", "uninstall"]).out();
    assert!(!unit.exists());
    let status = kith(&["service", "status", "--json"]).json();
    assert_eq!(status["installed"], false, "{status}");
    assert!(
        kith(&["service", "uninstall"])
            .out()
            .contains("no kith service is installed"),
        "a second uninstall says there is nothing to remove"
    );
}
