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
        "keys new",
        "keys show",
        "keys import",
        "account",
        "transfer",
        "stake",
        "unstake",
        "propose",
        "propose text",
        "propose param",
        "propose spend",
        "propose add-validator",
        "propose remove-validator",
        "propose set-reputation",
        "propose add-witness",
        "propose remove-witness",
        "vote",
        "proposals list",
        "proposals show",
        "validators",
        "block",
        "proof",
        "status",
        "vectors generate",
        "vectors check",
        "completions",
    ] {
        let output = agora()
            .args(command.split(' '))
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command} --help: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("Usage"), "{command}");
        let leaf = !matches!(command, "keys" | "propose");
        assert!(
            !leaf || help.contains("Example"),
            "{command} has an example"
        );
    }
}

/// Completion scripts for the three shells name the commands.
#[test]
fn completions_cover_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let output = agora().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains("proposals") && script.contains("vectors"),
            "{shell}"
        );
    }
    assert_eq!(
        agora()
            .args(["completions", "tcsh"])
            .status()
            .unwrap()
            .code(),
        Some(2)
    );
}

/// `keys import` copies a key (here into an encrypted file) without changing the
/// account; importing over an existing file is refused.
#[test]
fn an_imported_key_keeps_its_account_and_can_be_encrypted() {
    let dir = temp_dir("import");
    let plain = dir.join("plain.key");
    let secret = dir.join("secret.key");
    let made = agora()
        .args(["--json", "--key"])
        .arg(&plain)
        .args(["keys", "new", "--kind", "ml-dsa-44"])
        .output()
        .unwrap();
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let imported = agora()
        .args(["--json", "--key"])
        .arg(&secret)
        .args(["keys", "import"])
        .arg(&plain)
        .arg("--encrypt")
        .env("AGORA_NEW_PASSPHRASE", "pass phrase")
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let imported: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(imported["account"], made["account"]);
    assert_eq!(imported["encrypted"], true);
    let shown = agora()
        .args(["--json", "--key"])
        .arg(&secret)
        .args(["keys", "show"])
        .env("AGORA_PASSPHRASE", "pass phrase")
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["account"], made["account"]);
    let again = agora()
        .arg("--key")
        .arg(&secret)
        .args(["keys", "import"])
        .arg(&plain)
        .status()
        .unwrap();
    assert!(!again.success(), "never overwrites");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The config file supplies defaults; a flag beats it; a malformed file is an error.
#[test]
fn the_config_file_sets_defaults_below_flags() {
    let dir = temp_dir("config");
    let config = dir.join("config.toml");
    std::fs::write(&config, "node = \"http://127.0.0.1:9\"\n").unwrap();
    let from_file = agora()
        .arg("status")
        .env("AGORA_CONFIG", &config)
        .env_remove("AGORA_NODE")
        .output()
        .unwrap();
    assert_eq!(from_file.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&from_file.stderr).contains("127.0.0.1:9/"));
    let from_flag = agora()
        .args(["--node", "http://127.0.0.1:1", "status"])
        .env("AGORA_CONFIG", &config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&from_flag.stderr).contains("127.0.0.1:1/"));
    std::fs::write(&config, "nodes = 1\n").unwrap();
    let malformed = agora()
        .arg("status")
        .env("AGORA_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(malformed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("config.toml"));
    std::fs::remove_dir_all(dir).unwrap();
}
