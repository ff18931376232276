//! WAL checkpoints off the writer's path.
//!
//! SQLite copies the WAL back into the database file (a checkpoint) in the connection
//! that commits once the WAL passes `wal_autocheckpoint` pages. That connection is the
//! node's only writer, awaited by the event loop: a 16 MB checkpoint and its fsync stalled
//! the loop, and every transaction waiting on it, once a second or so under load. Here a
//! connection of its own checkpoints (`PASSIVE`: it never blocks the writer or readers)
//! every [`CHECKPOINT_EVERY`]. The writer's own automatic checkpoint stays, at
//! [`FALLBACK_CHECKPOINT_PAGES`], as the bound on the WAL should this task fall behind.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the WAL is copied back. At ~300 KB a block and a few dozen blocks a second,
/// a few MB each time.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The writer checkpoints itself only once the WAL holds this many pages (64 MB at 16
/// KiB pages): the bound, reached only if the checkpointer stops keeping up.
pub const FALLBACK_CHECKPOINT_PAGES: u32 = 4_000;

/// The task that checkpoints: [`Checkpointer::stop`] ends it and closes its connection;
/// dropped, it is aborted.
pub struct Checkpointer {
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database `options` opens (which already exists).
    pub fn start(options: &SqliteConnectOptions, path: String) -> Checkpointer {
        let options = options.clone().create_if_missing(false);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Not before the store has opened the file (checked it, migrated it).
            tokio::select! {
                _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                _ = &mut stopped => return,
            }
            let mut connection = match options.connect().await {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(path, %error, "no checkpointing connection: the writer checkpoints the WAL itself");
                    return;
                }
            };
            let mut ticker = tokio::time::interval(CHECKPOINT_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = &mut stopped => break,
                }
                match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut connection)
                    .await
                {
                    Ok(_) => failing = false,
                    // Said once per run of failures: the writer meets the same disk.
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(path, %error, "WAL checkpoint failed; retrying");
                    }
                    Err(_) => {}
                }
            }
            // Closed before the store's own connection: the last connection to close
            // copies the whole WAL back and removes it (a graceful stop leaves one file).
            let _ = connection.close().await;
        });
        Checkpointer {
            task,
            stop: Some(stop),
        }
    }

    /// Ends the task and waits until its connection is closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
