//! The README's commands, run in order as a newcomer would paste them: the quick start's
//! service, the log's API in another shell, then (that service stopped) "A sender's first five
//! minutes" to the witnessed evidence. `cargo run --` is the binary this test suite built, and
//! the README's ports are free ones; the suite's own command (`cargo test`) is not run again.
//!
//! It needs curl, python3 and openssl, so it is `#[ignore]`d and runs with `--include-ignored`,
//! as CI does.

use std::process::Command;

/// The README's `sh` blocks, in order.
fn shell_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some("sh")) => current = Some(String::new()),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some(block), None) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
#[ignore = "needs curl, python3 and openssl: run with --include-ignored, as CI does"]
fn the_readme_commands_work_in_order() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    assert!(blocks.len() >= 5, "{} sh blocks", blocks.len());
    let quick_start = &blocks[0];
    assert!(
        quick_start.contains("cargo run -- serve") && quick_start.contains("cargo test"),
        "the quick start is the two commands: {quick_start}"
    );
    let (port, w1, w2) = (free_port(), free_port(), free_port());
    let bin = env!("CARGO_BIN_EXE_consent-ledger");
    let adapt = |block: &str| {
        block
            .replace("cargo run -q -- ", "\"$BIN\" ")
            .replace(
                "cargo run -- serve",
                &format!("\"$BIN\" serve --bind 127.0.0.1:{port}"),
            )
            .replace("8080", &port.to_string())
            .replace("8090", &w1.to_string())
            .replace("8091", &w2.to_string())
    };
    let mut script = format!(
        "BIN='{bin}'\n\
         # The quick start's first command (its own shell: in the background here).\n\
         \"$BIN\" serve --bind 127.0.0.1:{port} & QUICK=$!\n\
         until curl -sf localhost:{port}/readyz >/dev/null; do sleep 0.2; done\n"
    );
    script.push_str(&adapt(&blocks[1]));
    script.push_str("\necho\n# \"Stop the quick start's serve first\"\nkill $QUICK; wait $QUICK\n");
    for block in &blocks[2..] {
        script.push_str(&adapt(block));
        script.push_str("\necho\n");
    }
    script.push_str("kill $SERVE $(jobs -p) 2>/dev/null; wait\n");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .args(["900", "bash", "-c", &script])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("\"may_send\":true"), "the decision: {all}");
    assert!(
        stdout.contains("signature valid"),
        "the webhook check: {all}"
    );
    assert_eq!(
        stdout.matches("verdict: VALID").count(),
        2,
        "both verifications: {all}"
    );
    assert!(!stdout.contains("INVALID"), "{all}");
    for command_failed in ["command not found", "No such file", "error:"] {
        assert!(!stderr.contains(command_failed), "{command_failed}: {all}");
    }
}
