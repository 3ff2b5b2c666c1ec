//! The binary as a user runs it: help, configuration errors, the verifier key.

use crate::common::{bin, ServeProcess};

#[test]
fn help_lists_the_commands() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "migrate",
        "log",
        "openapi",
        "--database-url",
        "CONSENT_LEDGER_DATABASE_URL",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    assert!(
        !text.contains("append-stress"),
        "test-only commands stay hidden"
    );
}

#[test]
fn a_database_url_without_scheme_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["--database-url", "ledger.db", "migrate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("invalid database URL") && err.contains("sqlite://"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was created"
    );
}

#[test]
fn log_vkey_prints_a_c2sp_verifier_key_that_persists() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("l.db").display());
    let run = || {
        let out = bin()
            .args([
                "--database-url",
                &url,
                "--origin",
                "cli.example/log",
                "log",
                "vkey",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let vkey = run();
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert_eq!(parts[0], "cli.example/log");
    assert!(parts[1].len() == 8 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(run(), vkey);
    let out = bin()
        .args([
            "--database-url",
            &url,
            "--origin",
            "cli.example/log",
            "log",
            "checkpoint",
        ])
        .output()
        .unwrap();
    let note = String::from_utf8(out.stdout).unwrap();
    let cp = crate::common::reference::verify_checkpoint(&note, &vkey).unwrap();
    // A new log's first checkpoint: its parameters leaf (the VRF key) and the map after it.
    assert_eq!((cp.origin.as_str(), cp.size), ("cli.example/log", 2));
}

/// The quick start's `serve`, as a process: it answers over HTTP and stops cleanly on SIGTERM.
#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    assert!(
        dir.path().join("consent-ledger.db").exists(),
        "the default database is ./consent-ledger.db"
    );
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET /checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A new log without a configured origin is named after public_url (here the default).
    assert!(answer.contains("\r\n\r\n127.0.0.1:8080\n2\n"), "{answer}");
    let (success, stderr) = server.terminate();
    assert!(success, "{stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
}

/// The access log's line for a request names the id its response carries (the client's, or
/// one the server made).
#[test]
fn the_access_log_names_the_request_id_the_response_carries() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    let mut ids = Vec::new();
    for given in ["", "X-Request-Id: client-chosen-7\r\n"] {
        let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: x\r\n{given}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let id = answer
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no x-request-id in {answer}"))
            .to_string();
        ids.push(id);
    }
    assert_eq!(ids[1], "client-chosen-7");
    let (_, stderr) = server.terminate();
    for id in &ids {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("path=/healthz status=200")
                    && l.contains(&format!("request_id={id}"))),
            "no access log line names {id}: {stderr}"
        );
    }
}

/// `--log-format json` writes one JSON object a line (the access line with the request id its
/// response carries); neither format writes colour escapes to a pipe.
#[test]
fn json_logs_are_one_object_a_line_and_pipes_get_no_colours() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &["--log-format", "json"]);
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: json-1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    // A recipient's link: its capability is not written to the log.
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET /u/secret-capability-7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream.read_to_string(&mut answer).unwrap();
    let (_, stderr) = server.terminate();
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(!stderr.contains("secret-capability-7"), "{stderr}");
    assert!(stderr.contains("\"path\":\"/u/{token}\""), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access = lines
        .iter()
        .find(|l| l["target"] == "consent_ledger::access")
        .unwrap_or_else(|| panic!("no access line: {stderr}"));
    assert_eq!(access["request_id"], "json-1", "{access}");
    assert_eq!(access["path"], "/healthz");
    assert_eq!(access["status"], 200);
    assert_eq!(access["level"], "INFO");
    assert!(access["timestamp"].is_string(), "{access}");
    let text = ServeProcess::start(dir.path(), &[]);
    let (_, stderr) = text.terminate();
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

/// The offline tools' `--help` lists their own options, not the server's; the commands that
/// open the database take its flags after their name as well as before it.
#[test]
fn offline_tools_list_their_own_options_only() {
    let help = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for offline in [
        &["verify", "evidence", "--help"][..],
        &["monitor", "--help"],
        &["witness", "serve", "--help"],
        &["openapi", "--help"],
    ] {
        let text = help(offline);
        for server in ["--database-url", "--pool-size", "--public-url", "--bind"] {
            assert!(
                !text.contains(server),
                "{offline:?} lists {server}:\n{text}"
            );
        }
    }
    assert!(help(&["verify", "evidence", "--help"]).contains("--vkey"));
    for online in [&["serve", "--help"][..], &["tenant", "create", "--help"]] {
        assert!(help(online).contains("--database-url"), "{online:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["migrate", "--database-url", "sqlite://after.db"][..],
        &["--database-url", "sqlite://before.db", "migrate"],
    ] {
        let out = bin().current_dir(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.path().join("after.db").exists() && dir.path().join("before.db").exists());
}

/// Every subcommand's flags parse without clashing with the global ones (clap checks this in
/// debug builds: a clash panics when the command is first used).
#[test]
fn the_command_line_is_well_formed() {
    consent_ledger::cli::command().debug_assert();
}

/// The golden bundles (`sdk/vectors/bundles.json`): the log's key, and (name, bundle, passed).
fn golden_bundles() -> (String, Vec<(String, serde_json::Value, bool)>) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/vectors/bundles.json");
    let vectors: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let cases = vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["bundle"].clone(),
                c["verdict"]["passed"] == true,
            )
        })
        .collect();
    (vectors["vkey"].as_str().unwrap().to_string(), cases)
}

#[test]
fn a_directory_of_bundles_is_verified_into_one_summary() {
    let (vkey, cases) = golden_bundles();
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    std::fs::create_dir(&bundles).unwrap();
    for (i, (_, bundle, _)) in cases.iter().enumerate() {
        let path = bundles.join(format!("{i:03}.json"));
        std::fs::write(path, serde_json::to_vec(bundle).unwrap()).unwrap();
    }
    let (csv, html) = (
        dir.path().join("summary.csv"),
        dir.path().join("summary.html"),
    );
    let out = bin()
        .args(["verify", "evidence"])
        .arg(&bundles)
        .args(["--vkey", &vkey, "--csv"])
        .arg(&csv)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Some are tampered: the batch fails, and says how many.
    assert!(!out.status.success(), "{stdout}");
    let invalid = cases.iter().filter(|c| !c.2).count();
    assert!(
        stdout.contains(&format!(
            "summary: {} bundles, {} valid, {invalid} invalid",
            cases.len(),
            cases.len() - invalid
        )),
        "{stdout}"
    );
    // The progress line.
    assert!(
        stderr.contains(&format!("verified {n}/{n}", n = cases.len())),
        "{stderr}"
    );
    let mut rows = csv::Reader::from_path(&csv).unwrap();
    let verdicts: Vec<String> = rows.records().map(|r| r.unwrap()[1].to_string()).collect();
    let expected: Vec<&str> = cases
        .iter()
        .map(|c| if c.2 { "VALID" } else { "INVALID" })
        .collect();
    assert_eq!(verdicts, expected);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(&format!("{invalid} 件が無効")), "{page}");
}

#[test]
fn a_batch_of_valid_bundles_passes() {
    let (vkey, cases) = golden_bundles();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<std::path::PathBuf> = cases
        .iter()
        .filter(|c| c.2)
        .enumerate()
        .map(|(i, (_, bundle, _))| {
            let path = dir.path().join(format!("{i}.json"));
            std::fs::write(&path, serde_json::to_vec(bundle).unwrap()).unwrap();
            path
        })
        .collect();
    let out = bin()
        .args(["verify", "evidence"])
        .args(&files)
        .args(["--vkey", &vkey])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{n} bundles, {n} valid, 0 invalid",
            n = files.len()
        )),
        "{stdout}"
    );
}

#[test]
fn the_verifier_page_is_one_file_with_the_key_filled_in() {
    let out = bin()
        .args(["verify", "page", "--vkey", "log.example+1234abcd+AQID"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("value=\"log.example+1234abcd+AQID\""));
    // Nothing from the network: no src or href to fetch.
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
}
