//! The `agora` binary as a process: key file permissions, JSON output, exit codes.

use std::process::Command;

fn agora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agora"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("agora-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn keys_are_private_and_a_world_readable_key_is_refused() {
    let dir = temp_dir("keys");
    let key = dir.join("me.key");
    let created = agora()
        .args([
            "--key",
            key.to_str().unwrap(),
            "--json",
            "keys",
            "new",
            "--kind",
            "ml-dsa-44",
        ])
        .output()
        .unwrap();
    assert!(created.status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&created.stdout).expect("--json output parses");
    let account = json["account"].as_str().unwrap().to_string();
    assert_eq!(account.len(), 64);
    let shown = agora()
        .args(["--key", key.to_str().unwrap(), "--json", "keys", "show"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["account"], account.as_str());
    assert!(
        !agora()
            .args(["--key", key.to_str().unwrap(), "keys", "new"])
            .status()
            .unwrap()
            .success(),
        "never overwrites a key"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = agora()
            .args(["--key", key.to_str().unwrap(), "keys", "show"])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("chmod 600"));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn exit_codes_tell_usage_errors_from_unreachable_nodes() {
    let usage = agora().args(["transfer"]).status().unwrap();
    assert_eq!(usage.code(), Some(2));
    let unreachable = agora()
        .args(["--node", "http://127.0.0.1:1", "status"])
        .status()
        .unwrap();
    assert_eq!(unreachable.code(), Some(4));
}

/// Every command's help renders (clap checks argument definitions when it builds them).
#[test]
fn every_command_has_help() {
    for command in [
        "keys",
        "account",
        "transfer",
        "stake",
        "unstake",
        "vote",
        "validators",
        "block",
        "proof",
        "status",
    ] {
        let output = agora().args([command, "--help"]).output().unwrap();
        assert!(
            output.status.success(),
            "{command} --help: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{command}"
        );
    }
}
