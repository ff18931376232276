//! Small disks for tests: a tmpfs mounted for one test, filled up to a margin.

use std::path::{Path, PathBuf};

/// A tmpfs mounted for one test and unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(at: PathBuf, megabytes: u32) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs at {}", at.display());
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Fills the file system holding `dir` with `filler`, then frees `leave` bytes of it.
pub fn fill_leaving(filler: &Path, leave: u64) {
    use std::io::Write;
    let mut file = std::fs::File::create(filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
    let written = std::fs::metadata(filler).unwrap().len();
    file.set_len(written.saturating_sub(leave)).unwrap();
}

/// Whether this test may mount a tmpfs: as root, yes; otherwise it is skipped with a line
/// that says so — except under CI (`.ci/run` sets AGORA_REQUIRE_ROOT_TESTS and runs as
/// root), where not being root fails it.
pub fn may_mount(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("AGORA_REQUIRE_ROOT_TESTS").is_none(),
        "mounting a small tmpfs needs root"
    );
    eprintln!("not root: {test} needs to mount a tmpfs; not run");
    false
}
