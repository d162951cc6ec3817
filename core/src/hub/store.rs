//! Where fetched files are kept: the contract between the protocol and a cache. Natively the
//! huggingface_hub cache layout (`cache.rs`); in the browser IndexedDB; in tests `MemoryStore`.
//!
//! The protocol writes a file's bytes strictly in file order (resuming after what `held` reports)
//! and calls `finish` only after checking them against the file's sha256 ETag, so a store never
//! shows an incomplete or corrupt file, and an interrupted download resumes where it stopped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use crate::Result;
use crate::weights::SharedBytes;

/// What the Hub said about one file of one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// The normalized ETag: the sha256 of an LFS file (X-Linked-Etag), the git blob sha1 of others.
    pub etag: String,
    pub size: u64,
    /// Where to GET the bytes: the CDN URL the Hub redirects a large file to, or the resolve URL.
    pub location: String,
}

impl FileMeta {
    /// The sha256 the bytes must have, when the ETag is one (LFS files).
    pub fn sha256(&self) -> Option<&str> {
        (self.etag.len() == 64 && self.etag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(self.etag.as_str())
    }

    /// The git blob sha1 the bytes must have, when the ETag is one (a file outside LFS).
    pub fn git_sha1(&self) -> Option<&str> {
        (self.etag.len() == 40 && self.etag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(self.etag.as_str())
    }
}

/// A file as a store has it.
pub enum Cached {
    /// Complete and verified, whole (a mapped blob, a small record).
    Bytes(SharedBytes),
    /// Complete and verified, but to be read by ranges through `Store::open` (a large file in a
    /// store that cannot map it: the browser's records), so that it never sits whole in memory.
    Stored(FileMeta),
    /// The Hub said it does not exist at this commit.
    Absent,
    /// Not in the store.
    Unknown,
}

#[allow(async_fn_in_trait)]
pub trait Store {
    type Partial: PartialFile;

    /// The commit a branch or tag pointed to when last seen.
    async fn commit(&self, repo: &str, revision: &str) -> Result<Option<String>>;
    async fn set_commit(&self, repo: &str, revision: &str, commit: &str) -> Result<()>;

    async fn get(&self, repo: &str, commit: &str, file: &str) -> Result<Cached>;
    /// Remembers that `file` does not exist at `commit`.
    async fn set_absent(&self, repo: &str, commit: &str, file: &str) -> Result<()>;
    /// Makes a complete file with `meta.etag`, stored for another commit, part of `commit` too.
    /// False when there is none.
    async fn link(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> Result<bool>;

    /// Whether `get` hands back a complete file as shared bytes (a mapped blob): then a CPU load
    /// uses the stored file itself instead of copying tensors as they stream. A store that keeps
    /// records (the browser's) says no, and CPU loads stream like GPU loads.
    fn maps_files(&self) -> bool {
        false
    }

    /// Starts or resumes storing a file. On a complete file (`Cached::Stored`, or one finished by
    /// someone else meanwhile) it reports every byte held, and `finish` only makes it visible.
    async fn open(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> Result<Self::Partial>;
}

/// A file being stored (or read back by ranges).
#[allow(async_fn_in_trait)]
pub trait PartialFile {
    /// The byte ranges already stored, sorted and disjoint.
    fn held(&self) -> Vec<Range<u64>>;
    /// Stored bytes (within `held`).
    async fn read(&mut self, range: Range<u64>) -> Result<Vec<u8>>;
    /// Stores bytes at `offset`. Calls come in file order, outside the held ranges.
    async fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;
    /// The end of one piece's bytes (`HubOptions::piece_bytes`, cut at tensor ends): where a
    /// store that keeps records per range writes one.
    async fn flush(&mut self) -> Result<()>;
    /// Every byte is stored and verified: make the file visible at its commit.
    async fn finish(self) -> Result<()>;
    /// The bytes failed verification: forget them.
    async fn discard(self) -> Result<()>;
}

/// Everything in memory, nothing kept after the process: for tests, and as the reference of the
/// contract. Clones share the same contents.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Rc<RefCell<MemoryInner>>,
}

#[derive(Default)]
struct MemoryInner {
    refs: HashMap<(String, String), String>,
    /// (repo, commit, file) → etag, or None for a file known absent.
    files: HashMap<(String, String, String), Option<String>>,
    blobs: HashMap<String, Arc<Vec<u8>>>,
    /// Unfinished downloads by etag: their bytes so far.
    partial: HashMap<String, Vec<u8>>,
    /// The most bytes it holds, as a browser's storage quota: None for no limit.
    room: Option<usize>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that holds at most `bytes`: a write past them fails as a browser's store does over
    /// its quota (`HubErrorKind::Quota`), giving back what that file had stored.
    pub fn with_room(bytes: usize) -> MemoryStore {
        let store = MemoryStore::default();
        store.inner.borrow_mut().room = Some(bytes);
        store
    }

    /// Etags of the complete blobs, and how many downloads are unfinished.
    pub fn contents(&self) -> (Vec<String>, usize) {
        let inner = self.inner.borrow();
        (inner.blobs.keys().cloned().collect(), inner.partial.len())
    }
}

fn key(repo: &str, commit: &str, file: &str) -> (String, String, String) {
    (repo.to_string(), commit.to_string(), file.to_string())
}

impl Store for MemoryStore {
    type Partial = MemoryPartial;

    async fn commit(&self, repo: &str, revision: &str) -> Result<Option<String>> {
        Ok(self.inner.borrow().refs.get(&(repo.to_string(), revision.to_string())).cloned())
    }
    async fn set_commit(&self, repo: &str, revision: &str, commit: &str) -> Result<()> {
        self.inner.borrow_mut().refs.insert((repo.to_string(), revision.to_string()), commit.to_string());
        Ok(())
    }
    async fn get(&self, repo: &str, commit: &str, file: &str) -> Result<Cached> {
        let inner = self.inner.borrow();
        Ok(match inner.files.get(&key(repo, commit, file)) {
            None => Cached::Unknown,
            Some(None) => Cached::Absent,
            Some(Some(etag)) => match inner.blobs.get(etag) {
                Some(b) => Cached::Bytes(b.clone()),
                None => Cached::Unknown,
            },
        })
    }
    async fn set_absent(&self, repo: &str, commit: &str, file: &str) -> Result<()> {
        self.inner.borrow_mut().files.insert(key(repo, commit, file), None);
        Ok(())
    }
    async fn link(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> Result<bool> {
        let mut inner = self.inner.borrow_mut();
        if !inner.blobs.contains_key(&meta.etag) {
            return Ok(false);
        }
        inner.files.insert(key(repo, commit, file), Some(meta.etag.clone()));
        Ok(true)
    }
    async fn open(&self, repo: &str, commit: &str, file: &str, meta: &FileMeta) -> Result<MemoryPartial> {
        let complete = self.inner.borrow().blobs.contains_key(&meta.etag);
        Ok(MemoryPartial { store: self.clone(), key: key(repo, commit, file), etag: meta.etag.clone(), complete })
    }
}

pub struct MemoryPartial {
    store: MemoryStore,
    key: (String, String, String),
    etag: String,
    complete: bool,
}

impl MemoryPartial {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let inner = self.store.inner.borrow();
        let bytes = if self.complete {
            inner.blobs.get(&self.etag).map(|b| b.as_slice())
        } else {
            inner.partial.get(&self.etag).map(Vec::as_slice)
        };
        f(bytes.unwrap_or(&[]))
    }
}

impl PartialFile for MemoryPartial {
    fn held(&self) -> Vec<Range<u64>> {
        let len = self.with_bytes(|b| b.len() as u64);
        if len == 0 { Vec::new() } else { vec![0..len] }
    }
    async fn read(&mut self, range: Range<u64>) -> Result<Vec<u8>> {
        self.with_bytes(|b| b.get(range.start as usize..range.end as usize).map(<[u8]>::to_vec))
            .ok_or_else(|| crate::Error::Input(format!("memory store: {range:?} is not held")))
    }
    async fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let mut inner = self.store.inner.borrow_mut();
        // Kept in the store at once, as a file on disk would be after a crash.
        let stored = inner.partial.entry(self.etag.clone()).or_default();
        if self.complete || offset != stored.len() as u64 {
            return Err(crate::Error::Input(format!("memory store: a write at {offset} after {} bytes", stored.len())));
        }
        let used = inner.blobs.values().map(|b| b.len()).chain(inner.partial.values().map(Vec::len)).sum::<usize>();
        if let Some(room) = inner.room
            && used + bytes.len() > room
        {
            inner.partial.remove(&self.etag);
            let (repo, _, file) = self.key.clone();
            let msg = format!("storing {} more bytes needs more room than the {room} bytes the store holds", bytes.len());
            return Err(crate::Error::Hub { repo, file, kind: crate::HubErrorKind::Quota, msg });
        }
        let stored = inner.partial.entry(self.etag.clone()).or_default();
        stored.extend_from_slice(bytes);
        Ok(())
    }
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    async fn finish(self) -> Result<()> {
        let mut inner = self.store.inner.borrow_mut();
        if !self.complete {
            let bytes = inner.partial.remove(&self.etag).unwrap_or_default();
            inner.blobs.insert(self.etag.clone(), Arc::new(bytes));
        }
        inner.files.insert(self.key, Some(self.etag));
        Ok(())
    }
    async fn discard(self) -> Result<()> {
        self.store.inner.borrow_mut().partial.remove(&self.etag);
        Ok(())
    }
}

/// A complete file in memory (a mapped blob) read as a `PartialFile` that holds every byte:
/// how a cached file is streamed onto a device without the network.
pub(crate) struct BytesPartial(pub SharedBytes);

impl PartialFile for BytesPartial {
    fn held(&self) -> Vec<Range<u64>> {
        vec![0..(*self.0).as_ref().len() as u64]
    }
    async fn read(&mut self, range: Range<u64>) -> Result<Vec<u8>> {
        (*self.0)
            .as_ref()
            .get(range.start as usize..range.end as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| crate::Error::Input(format!("bytes {range:?} are outside the file")))
    }
    async fn write(&mut self, offset: u64, _bytes: &[u8]) -> Result<()> {
        Err(crate::Error::Input(format!("a write at {offset} into a complete file")))
    }
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    async fn finish(self) -> Result<()> {
        Ok(())
    }
    async fn discard(self) -> Result<()> {
        Ok(())
    }
}
