//! Operator reloads of the policy: the `POLICY` file is watched (its directory, so that both
//! editors writing in place and `mv`/rename replacing the file are seen), `SIGHUP` reloads
//! it, and `POST /admin/policy` reloads it or loads an uploaded component.
//!
//! Every path ends in [`Policy::load`], which validates before it swaps; a rejected
//! candidate is logged and counted and the running policy keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::runtime::sha256_hex;
use super::{Description, Policy, PolicyError};

/// Quiet time after the last change before the file is read: editors and `cp` write in
/// several steps.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// Largest policy file or upload accepted.
pub const MAX_POLICY_BYTES: usize = 64 << 20;

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// No `POLICY` file is configured.
    #[error("no POLICY file is configured")]
    NoFile,
    /// The file could not be read.
    #[error("reading {path}: {msg}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        msg: String,
    },
    /// The file or upload is too large.
    #[error("a policy of {0} bytes is larger than {MAX_POLICY_BYTES}")]
    TooLarge(usize),
    /// A precompiled component came from the network.
    #[error("precompiled (.cwasm) policies are accepted only from the POLICY file, not uploaded")]
    PrecompiledUpload,
    /// The policy runtime rejected the candidate.
    #[error(transparent)]
    Rejected(#[from] PolicyError),
    /// Watching the file failed.
    #[error("watching {path}: {msg}")]
    Watch {
        /// The watched directory.
        path: String,
        /// Why.
        msg: String,
    },
}

/// What a reload did.
#[derive(Debug, Clone)]
pub enum Reloaded {
    /// The candidate was loaded.
    Loaded(Description),
    /// The file holds the bytes already running: nothing to do.
    Unchanged,
}

/// Reloads the policy from the operator's file or an upload.
pub struct Reloader {
    policy: Arc<Policy>,
    path: Option<PathBuf>,
    /// The file as it was when last loaded from: an event that arrives after the file was
    /// loaded again some other way (a late, debounced event; `SIGHUP`) finds it unchanged
    /// and does not undo a later upload or rollback.
    last_file: Mutex<Option<Loaded>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish()
    }
}

/// What identifies one write of the file: a rewrite with the same bytes is a new write.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: meta.ino(),
        }
    }
}

/// The file as it was loaded: which write, which bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loaded {
    stamp: Stamp,
    sha256: String,
}

impl Reloader {
    /// A reloader for `policy`, whose file (if any) is `path`.
    pub fn new(policy: Arc<Policy>, path: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Reloader {
            policy,
            path,
            last_file: Mutex::new(None),
        })
    }

    /// The policy being reloaded.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The watched file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Reads the `POLICY` file and loads it. Without `force` it is skipped when it holds the
    /// running policy (a touch, a repeated event), or when it has not been written since it
    /// was last loaded (a late event: the policy may have been replaced since by an upload
    /// or a rollback, which a stale event must not undo).
    pub async fn reload_file(&self, force: bool) -> Result<Reloaded, ReloadError> {
        let path = self.path.clone().ok_or(ReloadError::NoFile)?;
        let read_path = path.clone();
        let bytes = tokio::task::spawn_blocking(move || read_limited(&read_path))
            .await
            .map_err(|e| ReloadError::Read {
                path: path.display().to_string(),
                msg: e.to_string(),
            })??;
        let (bytes, stamp) = bytes;
        let seen = Loaded {
            stamp,
            sha256: sha256_hex(&bytes),
        };
        if !force {
            let last = self
                .last_file
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if seen.sha256 == self.policy.sha256() || last.as_ref() == Some(&seen) {
                return Ok(Reloaded::Unchanged);
            }
        }
        let d = self.policy.load(bytes, &path.display().to_string()).await?;
        *self
            .last_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(seen);
        Ok(Reloaded::Loaded(d))
    }

    /// Loads an uploaded component (`POST /admin/policy`). Precompiled files are refused:
    /// they hold native code, and only the operator's own file is trusted with that.
    pub async fn load_upload(&self, bytes: Vec<u8>) -> Result<Description, ReloadError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(ReloadError::TooLarge(bytes.len()));
        }
        if wasmtime::Engine::detect_precompiled(&bytes).is_some() {
            self.policy
                .stats()
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ReloadError::PrecompiledUpload);
        }
        Ok(self.policy.load(bytes, "upload").await?)
    }

    /// Watches the `POLICY` file and reloads it after changes settle, until the returned
    /// watcher is dropped. Does nothing without a file.
    pub fn watch(self: &Arc<Self>) -> Result<Option<FileWatch>, ReloadError> {
        let Some(path) = self.path.clone() else {
            return Ok(None);
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map(|n| n.to_os_string());
        let watch_err = |e: notify::Error| ReloadError::Watch {
            path: dir.display().to_string(),
            msg: e.to_string(),
        };
        // Any relevant event means "read the file again": one pending wake-up is enough.
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                let relevant = matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Access(_)
                ) && event
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == name);
                if relevant {
                    let _ = tx.try_send(());
                }
            })
            .map_err(watch_err)?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(watch_err)?;
        let this = self.clone();
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Debounce: wait until no event came for DEBOUNCE.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                this.log_reload("file changed", this.reload_file(false).await);
            }
        });
        tracing::info!(file = %path.display(), "watching the policy file");
        Ok(Some(FileWatch {
            _watcher: watcher,
            task,
        }))
    }

    /// Reloads the file on every `SIGHUP`, for as long as the task runs.
    #[cfg(unix)]
    pub fn reload_on_sighup(self: &Arc<Self>) -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let this = self.clone();
        Ok(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                this.log_reload("SIGHUP", this.reload_file(true).await);
            }
        }))
    }

    fn log_reload(&self, why: &str, result: Result<Reloaded, ReloadError>) {
        match result {
            Ok(Reloaded::Loaded(d)) => tracing::info!(%why, policy = %d.name, "policy reloaded"),
            Ok(Reloaded::Unchanged) => tracing::debug!(%why, "policy file unchanged"),
            // A rejected component is logged by `Policy::load` already.
            Err(ReloadError::Rejected(_)) => {}
            Err(e) => {
                tracing::warn!(%why, error = %e, "policy reload failed; keeping the running one")
            }
        }
    }
}

/// A running file watch; dropping it stops watching.
#[derive(Debug)]
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The file's bytes and which write of it they are (metadata read before the bytes: a write
/// in between makes a stamp older than the bytes, so the next event loads them again).
fn read_limited(path: &Path) -> Result<(Vec<u8>, Stamp), ReloadError> {
    let err = |e: std::io::Error| ReloadError::Read {
        path: path.display().to_string(),
        msg: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    if meta.len() > MAX_POLICY_BYTES as u64 {
        return Err(ReloadError::TooLarge(
            usize::try_from(meta.len()).unwrap_or(usize::MAX),
        ));
    }
    let bytes = std::fs::read(path).map_err(err)?;
    Ok((bytes, Stamp::of(&meta)))
}
