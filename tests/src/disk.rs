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

/// Writes 16 bytes of garbage into the middle of every page of a SQLite database's bytes
/// but the first (the header), at the page size the file's header states.
pub fn damage_every_page(bytes: &mut [u8]) {
    assert!(bytes.starts_with(b"SQLite format 3\0"), "a SQLite database");
    let page = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        size => usize::from(size),
    };
    assert!(page >= 512, "a page size in the header");
    for start in (page..bytes.len()).step_by(page) {
        let middle = start + page / 2;
        bytes[middle..middle + 16].fill(0xA5);
    }
}
