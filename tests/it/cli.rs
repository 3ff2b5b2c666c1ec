//! The binary as a user runs it: help, configuration errors, the verifier key.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consent-ledger"));
    c.env_remove("CONSENT_LEDGER_DATABASE_URL")
        .env_remove("CONSENT_LEDGER_CONFIG");
    c
}

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
    assert_eq!((cp.origin.as_str(), cp.size), ("cli.example/log", 0));
}
