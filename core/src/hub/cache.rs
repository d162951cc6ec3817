//! The native store: huggingface_hub's cache layout, so that Python and webformers share files
//! both ways.
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default ~/.cache/huggingface)
//! └── models--{org}--{name}/
//!     ├── blobs/{etag}                    complete, verified files, named by ETag
//!     ├── blobs/{etag}.incomplete         a download in progress (resumed from its length)
//!     ├── snapshots/{commit}/{file}       relative symlinks to ../../blobs/{etag}
//!     ├── refs/{revision}                 the commit a branch or tag pointed to
//!     └── .no_exist/{commit}/{file}       files the Hub said do not exist
//! $HF_HUB_CACHE/.locks/models--{org}--{name}/{etag}.lock   one writer per blob (flock, as Python's filelock)
//! ```
//!
//! A blob appears only by renaming its `.incomplete` file once every byte is there and matches
//! the ETag, so no reader ever sees a partial or corrupt blob.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use super::store::{Cached, FileMeta, PartialFile, Store};
use crate::weights::SharedBytes;
use crate::{Error, HubErrorKind, Result};

/// Files larger than this are memory-mapped instead of read.
const MAP_ABOVE: u64 = 1 << 20;

#[derive(Clone, Debug)]
pub struct HfCache {
    root: PathBuf,
}

fn cache_error(repo: &str, file: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Hub { repo: repo.to_string(), file: file.to_string(), kind: HubErrorKind::Cache, msg: format!("{}: {e}", path.display()) }
}

impl HfCache {
    /// The cache at `root` (the folder that holds `models--*`).
    pub fn new(root: impl Into<PathBuf>) -> HfCache {
        HfCache { root: root.into() }
    }

    /// Where huggingface_hub keeps it: `HF_HUB_CACHE`, else `$HF_HOME/hub`, where `HF_HOME`
    /// defaults to `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`.
    pub fn from_env() -> HfCache {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")).unwrap_or_else(|| hf_home().join("hub"));
        HfCache::new(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `models--org--name`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join(format!("models--{}", repo.replace('/', "--")))
    }

    /// Where a file of a commit is (a symlink into blobs/), whether or not it exists.
    pub fn snapshot_path(&self, repo: &str, commit: &str, file: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit).join(file)
    }

    pub fn blob_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    fn lock_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.root.join(".locks").join(format!("models--{}", repo.replace('/', "--"))).join(format!("{etag}.lock"))
    }

    /// Points snapshots/{commit}/{file} at blobs/{etag} with a relative link, as Python does.
    fn link_snapshot(&self, repo: &str, commit: &str, file: &str, etag: &str) -> Result<()> {
        let pointer = self.snapshot_path(repo, commit, file);
        let fail = |e: std::io::Error| cache_error(repo, file, &pointer, e);
        fs::create_dir_all(pointer.parent().unwrap_or(&self.root)).map_err(fail)?;
        // snapshots/{commit}/a/b → ../../../blobs/{etag}: one `..` per folder below the repo folder.
        let depth = 2 + file.matches('/').count();
        let target: PathBuf = std::iter::repeat_n("..", depth).collect::<PathBuf>().join("blobs").join(etag);
        match fs::symlink_metadata(&pointer) {
            Ok(_) => fs::remove_file(&pointer).map_err(fail)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e)),
        }
        #[cfg(unix)]
        let made = std::os::unix::fs::symlink(&target, &pointer);
        // Where links are not allowed, a copy (what huggingface_hub does there too).
        #[cfg(not(unix))]
        let made = fs::copy(self.blob_path(repo, etag), &pointer).map(|_| ());
        match made {
            Ok(()) => Ok(()),
            // Made meanwhile by another process: fine when it points at the same blob.
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && fs::canonicalize(&pointer).ok() == fs::canonicalize(self.blob_path(repo, etag)).ok() =>
            {
                Ok(())
            }
            Err(e) => Err(fail(e)),
        }
    }
}

pub(crate) fn hf_home() -> PathBuf {
    if let Some(h) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface")
}

/// A whole file: read when small, mapped when large (CPU tensors then point into the map).
fn read_whole(path: &Path) -> std::io::Result<SharedBytes> {
    let f = File::open(path)?;
    if f.metadata()?.len() > MAP_ABOVE {
        // SAFETY: a read-only map of a blob, which is never written after it is renamed into place.
        let map = unsafe { memmap2::Mmap::map(&f) }?;
        return Ok(Arc::new(map));
    }
    let mut bytes = Vec::new();
    (&f).read_to_end(&mut bytes)?;
    Ok(Arc::new(bytes))
}

impl Store for HfCache {
    type Partial = BlobFile;

    async fn commit(&self, repo: &str, revision: &str) -> Result<Option<String>> {
        let path = self.repo_dir(repo).join("refs").join(revision);
        match fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(cache_error(repo, "", &path, e)),
        }
    }

    async fn set_commit(&self, repo: &str, revision: &str, commit: &str) -> Result<()> {
        let path = self.repo_dir(repo).join("refs").join(revision);
        if fs::read_to_string(&path).is_ok_and(|s| s == commit) {
            return Ok(());
        }
        let fail = |e: std::io::Error| cache_error(repo, "", &path, e);
        fs::create_dir_all(path.parent().unwrap_or(&self.root)).map_err(fail)?;
        // Written aside and renamed, so a reader never sees half a hash.
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        fs::write(&tmp, commit).map_err(fail)?;
        fs::rename(&tmp, &path).map_err(fail)
    }

    async fn get(&self, repo: &str, commit: &str, file: &str) -> Result<Cached> {
        let pointer = self.snapshot_path(repo, commit, file);
        match read_whole(&pointer) {
            Ok(bytes) => return Ok(Cached::Bytes(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(cache_error(repo, file, &pointer, e)),
        }
        if self.repo_dir(repo).join(".no_exist").join(commit).join(file).is_file() {
            return Ok(Cached::Absent);
        }
        Ok(Cached::Unknown)
    }

    async fn set_absent(&self, repo: &str, commit: &str, file: &str) -> Result<()> {
        let path = self.repo_dir(repo).join(".no_exist").join(commit).join(file);
        let fail = |e: std::io::Error| cache_error(repo, file, &path, e);
        fs::create_dir_all(path.parent().unwrap_or(&self.root)).map_err(fail)?;
        File::create(&path).map(|_| ()).map_err(fail)
    }

    fn maps_files(&self) -> bool {
        true
    }

    async fn link(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> Result<bool> {
        if !self.blob_path(repo, &meta.etag).is_file() {
            return Ok(false);
        }
        self.link_snapshot(repo, commit, file, &meta.etag)?;
        Ok(true)
    }

    async fn open(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> Result<BlobFile> {
        let lock_path = self.lock_path(repo, &meta.etag);
        let fail = |p: &Path, e: std::io::Error| cache_error(repo, file, p, e);
        fs::create_dir_all(lock_path.parent().unwrap_or(&self.root)).map_err(|e| fail(&lock_path, e))?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| fail(&lock_path, e))?;
        // Waits while another process (Python's huggingface_hub included) writes this blob.
        lock.lock().map_err(|e| fail(&lock_path, e))?;
        let blob = self.blob_path(repo, &meta.etag);
        let incomplete = blob.with_file_name(format!("{}.incomplete", meta.etag));
        fs::create_dir_all(blob.parent().unwrap_or(&self.root)).map_err(|e| fail(&blob, e))?;
        let base = BlobFile {
            cache: self.clone(),
            repo: repo.to_string(),
            commit: commit.to_string(),
            file: file.to_string(),
            etag: meta.etag.clone(),
            size: meta.size,
            blob: blob.clone(),
            incomplete: incomplete.clone(),
            handle: None,
            appender: None,
            len: 0,
            complete: false,
            _lock: lock,
        };
        if blob.is_file() {
            // Finished by someone else while this load waited for the lock.
            let handle = File::open(&blob).map_err(|e| fail(&blob, e))?;
            let len = handle.metadata().map_err(|e| fail(&blob, e))?.len();
            return Ok(BlobFile { handle: Some(handle), len, complete: true, ..base });
        }
        let mut handle =
            OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&incomplete).map_err(|e| fail(&incomplete, e))?;
        let mut len = handle.metadata().map_err(|e| fail(&incomplete, e))?.len();
        if len > meta.size {
            // More bytes than the file has: not this file's prefix.
            handle.set_len(0).map_err(|e| fail(&incomplete, e))?;
            len = 0;
        }
        handle.seek(SeekFrom::Start(len)).map_err(|e| fail(&incomplete, e))?;
        Ok(BlobFile { handle: Some(handle), len, ..base })
    }
}

/// Appends to a file on a thread of its own, so that storing overlaps hashing and uploading.
/// Dropping it waits for every byte handed to it to be written.
struct Appender {
    tx: Option<SyncSender<Vec<u8>>>,
    spares: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<std::io::Result<File>>>,
}

impl Appender {
    fn new(file: File) -> std::io::Result<Appender> {
        let (tx, rx) = sync_channel::<Vec<u8>>(8);
        let (spare, spares) = channel();
        let thread = std::thread::Builder::new().name("hub-write".into()).spawn(move || {
            let mut file = file;
            for buf in rx {
                file.write_all(&buf)?;
                let _ = spare.send(buf);
            }
            Ok(file)
        })?;
        Ok(Appender { tx: Some(tx), spares, thread: Some(thread) })
    }

    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut buf = self.spares.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        match self.tx.as_ref().map(|tx| tx.send(buf)) {
            Some(Ok(())) => Ok(()),
            // The thread stopped on a write error: that error.
            _ => self.close().map(|_| ()).and(Err(std::io::Error::other("the writer stopped"))),
        }
    }

    /// Waits for every write; gives the file back.
    fn close(&mut self) -> std::io::Result<File> {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the writer thread panicked")),
            None => Err(std::io::Error::other("the writer is closed")),
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A blob being written (`blobs/{etag}.incomplete`), holding the blob's lock until dropped.
pub struct BlobFile {
    cache: HfCache,
    repo: String,
    commit: String,
    file: String,
    etag: String,
    size: u64,
    blob: PathBuf,
    incomplete: PathBuf,
    handle: Option<File>,
    /// Writes in flight, once writing started (the handle moves into it).
    appender: Option<Appender>,
    /// Bytes in the file (or handed to the appender): a prefix of the blob.
    len: u64,
    /// The blob already exists; this only reads it.
    complete: bool,
    _lock: File,
}

impl BlobFile {
    fn fail(&self, e: impl std::fmt::Display) -> Error {
        let path = if self.complete { &self.blob } else { &self.incomplete };
        cache_error(&self.repo, &self.file, path, e)
    }

    /// The file, with every write done.
    fn handle(&mut self) -> Result<&mut File> {
        if let Some(mut a) = self.appender.take() {
            let file = a.close().map_err(|e| self.fail(e))?;
            self.handle = Some(file);
        }
        match self.handle.as_mut() {
            Some(h) => Ok(h),
            None => Err(cache_error(&self.repo, &self.file, &self.incomplete, "already closed")),
        }
    }
}

impl PartialFile for BlobFile {
    fn held(&self) -> Vec<Range<u64>> {
        if self.len == 0 { Vec::new() } else { vec![0..self.len.min(self.size)] }
    }

    async fn read(&mut self, range: Range<u64>) -> Result<Vec<u8>> {
        if range.end > self.len {
            return Err(self.fail(format!("bytes {range:?} are not stored yet")));
        }
        let mut out = vec![0; (range.end - range.start) as usize];
        let len = self.len;
        let h = self.handle()?;
        // Back to the end afterwards: writes append there.
        let r = h.seek(SeekFrom::Start(range.start)).and_then(|_| h.read_exact(&mut out)).and_then(|_| h.seek(SeekFrom::Start(len)));
        r.map_err(|e| self.fail(e))?;
        Ok(out)
    }

    async fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        if self.complete || offset != self.len {
            return Err(self.fail(format!("a write at byte {offset}, after {} bytes", self.len)));
        }
        if self.appender.is_none() {
            let file = self.handle.take().ok_or_else(|| self.fail("already closed"))?;
            self.appender = Some(Appender::new(file).map_err(|e| self.fail(e))?);
        }
        let r = self.appender.as_mut().map(|a| a.push(bytes));
        if let Some(Err(e)) = r {
            return Err(self.fail(e));
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        if !self.complete {
            if self.len != self.size {
                return Err(self.fail(format!("{} bytes stored of {}", self.len, self.size)));
            }
            // No fsync, as huggingface_hub: the rename is what makes the blob appear, and it only
            // happens after every byte was checked.
            self.handle()?;
            drop(self.handle.take());
            fs::rename(&self.incomplete, &self.blob).map_err(|e| self.fail(e))?;
        }
        self.cache.link_snapshot(&self.repo, &self.commit, &self.file, &self.etag)
    }

    async fn discard(mut self) -> Result<()> {
        drop(self.appender.take());
        drop(self.handle.take());
        if !self.complete {
            match fs::remove_file(&self.incomplete) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }
}
