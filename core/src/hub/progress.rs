//! Load progress as transformers.js reports it (`progress_callback`): per file `initiate`,
//! `download`, `progress` and `done`, a `progress_total` over every file of the load, and `ready`
//! at the end. The CLI draws bars from these; the browser package passes them to JS as they are.

use std::cell::RefCell;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressStatus {
    /// A file is wanted (from the cache or the network).
    Initiate,
    /// Its bytes start coming from the network.
    Download,
    /// More of its bytes arrived.
    Progress,
    /// The file is complete (downloaded, or found in the cache).
    Done,
    /// The sum over the load's files, after each `Progress`.
    Total,
    /// Every file of the load is there.
    Ready,
}

impl ProgressStatus {
    /// The name transformers.js uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressStatus::Initiate => "initiate",
            ProgressStatus::Download => "download",
            ProgressStatus::Progress => "progress",
            ProgressStatus::Done => "done",
            ProgressStatus::Total => "progress_total",
            ProgressStatus::Ready => "ready",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProgressEvent {
    pub status: ProgressStatus,
    /// The repository (`org/name`).
    pub name: String,
    /// The file; empty for `Total` and `Ready`.
    pub file: String,
    /// Bytes so far and in all (`Progress`, `Total`, and `Done`).
    pub loaded: u64,
    pub total: u64,
    /// 0 to 100.
    pub progress: f64,
}

impl ProgressEvent {
    /// The event as transformers.js shapes it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "status": self.status.as_str(), "name": self.name });
        if !self.file.is_empty() {
            v["file"] = self.file.clone().into();
        }
        if matches!(self.status, ProgressStatus::Progress | ProgressStatus::Total | ProgressStatus::Done) {
            v["loaded"] = self.loaded.into();
            v["total"] = self.total.into();
            v["progress"] = self.progress.into();
        }
        v
    }
}

/// Receives every event. Not `Send`: in the browser it wraps a JS function.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent)>;

/// Emits one load's events and keeps the per-file counts the total is made of.
pub(crate) struct Tracker {
    callback: Option<ProgressFn>,
    name: String,
    /// (file, loaded, total) of every file seen in this load.
    files: RefCell<Vec<(String, u64, u64)>>,
}

fn percent(loaded: u64, total: u64) -> f64 {
    if total == 0 { 100.0 } else { loaded as f64 * 100.0 / total as f64 }
}

impl Tracker {
    pub(crate) fn new(callback: Option<ProgressFn>, name: &str) -> Tracker {
        Tracker { callback, name: name.to_string(), files: RefCell::new(Vec::new()) }
    }

    fn emit(&self, status: ProgressStatus, file: &str, loaded: u64, total: u64) {
        if let Some(cb) = &self.callback {
            cb(&ProgressEvent { status, name: self.name.clone(), file: file.to_string(), loaded, total, progress: percent(loaded, total) });
        }
    }

    fn set(&self, file: &str, loaded: u64, total: u64) {
        let mut files = self.files.borrow_mut();
        match files.iter_mut().find(|(f, ..)| f == file) {
            Some(entry) => (entry.1, entry.2) = (loaded, total),
            None => files.push((file.to_string(), loaded, total)),
        }
    }

    fn emit_total(&self) {
        let (loaded, total) = self.files.borrow().iter().fold((0, 0), |(l, t), (_, fl, ft)| (l + fl, t + ft));
        self.emit(ProgressStatus::Total, "", loaded, total);
    }

    pub(crate) fn initiate(&self, file: &str) {
        self.emit(ProgressStatus::Initiate, file, 0, 0);
    }

    pub(crate) fn download(&self, file: &str, total: u64) {
        self.set(file, 0, total);
        self.emit(ProgressStatus::Download, file, 0, total);
    }

    pub(crate) fn progress(&self, file: &str, loaded: u64, total: u64) {
        self.set(file, loaded, total);
        self.emit(ProgressStatus::Progress, file, loaded, total);
        self.emit_total();
    }

    pub(crate) fn done(&self, file: &str, size: u64) {
        self.set(file, size, size);
        self.emit(ProgressStatus::Done, file, size, size);
    }

    pub(crate) fn ready(&self) {
        self.emit(ProgressStatus::Ready, "", 0, 0);
    }
}
