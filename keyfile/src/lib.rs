//! Secret files (key files) on disk, shared by `agora-node` and `agora`: created with
//! mode 0600, never overwritten, and refused when group or others can read them. Not part
//! of the state machine.

use std::io::Write;
use std::path::Path;

/// Why a secret file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file exists already, or cannot be created.
    #[error("creating {path} (it must not exist yet): {source}")]
    Create {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read it.
    #[error("{path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// Writes `bytes` to a new file readable by the owner only, and syncs it. Refuses to
/// overwrite.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|source| SecretFileError::Create {
            path: path.display().to_string(),
            source,
        })?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a secret file, refusing it when group or others may read it.
pub fn read(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.display().to_string(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(SecretFileError::Exposed {
                path: path.display().to_string(),
                mode: mode & 0o777,
            });
        }
    }
    std::fs::read(path).map_err(io)
}
