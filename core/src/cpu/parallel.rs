//! Splitting work over threads: rayon natively; in wasm built with `+atomics` (the npm package's
//! threaded build), the small pool of `wasm_pool` over Web Workers (or Node worker_threads) that
//! share the module's memory; otherwise (the single-threaded wasm build) one thread.

/// Threads kernels may use.
pub(crate) fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    {
        wasm_pool::threads()
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    {
        1
    }
}

/// Sets the number of CPU threads kernels use (natively; once, before the first kernel runs).
/// In wasm the thread pool is started from JavaScript (see `wasm_pool`); this is a no-op there.
pub fn set_threads(n: usize) -> crate::Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| crate::Error::Input(format!("setting {n} CPU threads: {e}")))
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = n;
        Ok(())
    }
}

/// Runs `f` on a thread of the pool (natively, with more than one thread), so that the parallel
/// loops inside start from a worker: the caller's share runs at once, and no thread outside the
/// pool sleeps and wakes around each loop. A short input's forward is hundreds of small loops.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if threads() > 1 && rayon::current_thread_index().is_none() {
        return rayon::scope(|_| f());
    }
    f()
}

/// In wasm `f` runs as it is: `wasm_pool`'s caller takes its share of each loop already (and a
/// graph holding WebGPU objects is not `Send`).
#[cfg(target_arch = "wasm32")]
pub(crate) fn on_pool<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f(i)` for every i in 0..n, in parallel where threads exist.
pub(crate) fn for_each(n: usize, f: impl Fn(usize) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        if n > 1 && threads() > 1 {
            (0..n).into_par_iter().for_each(f);
            return;
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    {
        if n > 1 && wasm_pool::run(n, &f) {
            return;
        }
    }
    (0..n).for_each(f)
}

/// Runs `f(chunk_index, chunk)` over `chunk`-sized pieces of `out`, in parallel.
pub(crate) fn for_each_chunk<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let chunk = chunk.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        if out.len() > chunk && threads() > 1 {
            out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
            return;
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    {
        if out.len() > chunk && threads() > 1 {
            let (len, base) = (out.len(), SharedSlice(out.as_mut_ptr()));
            for_each(len.div_ceil(chunk), |i| {
                let start = i * chunk;
                // SAFETY: the chunks are disjoint and inside `out`, which outlives the tasks.
                let piece = unsafe { std::slice::from_raw_parts_mut(base.at(start), chunk.min(len - start)) };
                f(i, piece)
            });
            return;
        }
    }
    out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c))
}

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub *mut f32);

impl SharedOut {
    /// Through a method, so closures capture the whole (Sync) wrapper, not the raw field.
    #[inline(always)]
    pub(crate) fn at(self, i: usize) -> *mut f32 {
        // SAFETY: callers index inside the buffer they wrapped.
        unsafe { self.0.add(i) }
    }
}
// SAFETY: callers guarantee tasks write disjoint elements and the buffer outlives the tasks.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// `SharedOut` for any element type (for_each_chunk's disjoint chunks).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
struct SharedSlice<T>(*mut T);
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
impl<T> Clone for SharedSlice<T> {
    fn clone(&self) -> Self {
        *self
    }
}
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
impl<T> Copy for SharedSlice<T> {}
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
impl<T> SharedSlice<T> {
    #[inline(always)]
    fn at(self, i: usize) -> *mut T {
        // SAFETY: callers index inside the slice they wrapped.
        unsafe { self.0.add(i) }
    }
}
// SAFETY: as SharedOut (disjoint chunks; T: Send is required by for_each_chunk).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
unsafe impl<T: Send> Send for SharedSlice<T> {}
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
unsafe impl<T: Send> Sync for SharedSlice<T> {}

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub mod wasm_pool {
    //! The thread pool of the threaded wasm build: workers (Web Workers, or worker_threads in
    //! Node) that instantiate this module on the same shared memory, then live in `worker_loop`.
    //!
    //! Why not rayon (wasm-bindgen-rayon): a browser's main thread may not block
    //! (`memory.atomic.wait` traps there), and a rayon call from outside the pool only waits
    //! while the pool works, so the main thread would spin doing nothing, one more busy thread than
    //! there are workers. Here the calling thread takes its share of the items: `n` threads compute
    //! with `n - 1` workers, as ONNX Runtime Web does.
    //!
    //! One job at a time. The caller publishes `&dyn Fn(usize)` and the item count, opens
    //! `GATE`, bumps `EPOCH` (waking sleeping workers), and every thread claims items from
    //! `NEXT` until none are left. A worker joins a job by counting itself into the open `GATE`
    //! before it reads the job; the caller, out of items, closes the gate and waits only for the
    //! workers inside (so the closure, on its stack, outlives every use). A worker that wakes too
    //! late finds the gate closed and skips the job: the caller never waits for a thread that is
    //! asleep or descheduled, only for items in progress. Workers spin a while for the next job
    //! (jobs come back to back within a forward pass), then sleep in `memory.atomic.wait32`. The
    //! caller never blocks: it spins for the items in progress. A worker that died (a panic
    //! traps its instance) sets `POISONED` from JavaScript, and the caller then panics instead of
    //! spinning forever.

    use core::arch::wasm32::{memory_atomic_notify, memory_atomic_wait32};
    use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering::*};

    /// Held by the caller for the length of a job, and by a worker while it registers.
    static BUSY: AtomicBool = AtomicBool::new(false);
    static WORKERS: AtomicUsize = AtomicUsize::new(0);
    static EPOCH: AtomicI32 = AtomicI32::new(0);
    static SLEEPING: AtomicUsize = AtomicUsize::new(0);
    /// `OPEN` while workers may join the job, plus the number of workers inside it.
    static GATE: AtomicU32 = AtomicU32::new(0);
    const OPEN: u32 = 1 << 31;
    /// The job: the address of a `&(dyn Fn(usize) + Sync)` on the caller's stack, and its size.
    static JOB: AtomicUsize = AtomicUsize::new(0);
    static ITEMS: AtomicUsize = AtomicUsize::new(0);
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static POISONED: AtomicI32 = AtomicI32::new(0);
    /// Jobs run on the pool, and items the workers (not the callers) ran: for diagnostics.
    static JOBS: AtomicUsize = AtomicUsize::new(0);
    static WORKER_ITEMS: AtomicUsize = AtomicUsize::new(0);

    /// About 0.1 to 1 ms of polling before a worker sleeps.
    const SPINS: u32 = 1 << 17;

    type Job<'a> = &'a (dyn Fn(usize) + Sync);

    /// The calling thread plus the registered workers.
    pub(crate) fn threads() -> usize {
        WORKERS.load(Relaxed) + 1
    }

    fn lock() {
        while BUSY.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            core::hint::spin_loop();
        }
    }

    fn check_poisoned() {
        if POISONED.load(Relaxed) != 0 {
            panic!("a worker thread of the wasm thread pool stopped (see its error above); the engine cannot continue");
        }
    }

    /// Runs the job on the pool; false (nothing ran) when there is no pool or a job is already
    /// running (a nested call, or a worker registering): the caller then runs it inline.
    pub(crate) fn run(n: usize, f: Job<'_>) -> bool {
        if WORKERS.load(Relaxed) == 0 || BUSY.compare_exchange(false, true, Acquire, Relaxed).is_err() {
            return false;
        }
        JOB.store(&f as *const Job<'_> as usize, Relaxed);
        ITEMS.store(n, Relaxed);
        NEXT.store(0, Relaxed);
        JOBS.fetch_add(1, Relaxed);
        // No worker is inside (the last job ended with none): the count is 0.
        GATE.store(OPEN, Release);
        EPOCH.fetch_add(1, SeqCst);
        if SLEEPING.load(SeqCst) > 0 {
            // SAFETY: EPOCH is a live, aligned i32.
            unsafe { memory_atomic_notify(EPOCH.as_ptr(), u32::MAX) };
        }
        work(f, n, false);
        GATE.fetch_and(!OPEN, AcqRel);
        while GATE.load(Acquire) != 0 {
            check_poisoned();
            core::hint::spin_loop();
        }
        BUSY.store(false, Release);
        true
    }

    fn work(f: Job<'_>, n: usize, worker: bool) {
        loop {
            let i = NEXT.fetch_add(1, Relaxed);
            if i >= n {
                break;
            }
            f(i);
            if worker {
                WORKER_ITEMS.fetch_add(1, Relaxed);
            }
        }
    }

    std::thread_local! {
        static IS_WORKER: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    }

    /// Called once by each worker before `worker_loop`: counts it in, and returns the epoch it
    /// has seen (to pass to `worker_loop`).
    pub fn register_worker() -> i32 {
        IS_WORKER.set(true);
        lock();
        WORKERS.fetch_add(1, Relaxed);
        let seen = EPOCH.load(Relaxed);
        BUSY.store(false, Release);
        seen
    }

    /// Counts this worker into the open job; false when no job is open.
    fn join() -> bool {
        let mut gate = GATE.load(Relaxed);
        while gate & OPEN != 0 {
            match GATE.compare_exchange_weak(gate, gate + 1, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(now) => gate = now,
            }
        }
        false
    }

    /// A worker's life: waits for jobs and takes its share of each. Never returns.
    pub fn worker_loop(mut seen: i32) -> ! {
        loop {
            let mut spins = 0u32;
            loop {
                let epoch = EPOCH.load(Acquire);
                if epoch != seen {
                    seen = epoch;
                    break;
                }
                if spins < SPINS {
                    spins += 1;
                    core::hint::spin_loop();
                    continue;
                }
                SLEEPING.fetch_add(1, SeqCst);
                // SAFETY: EPOCH is a live, aligned i32; workers may block (they are not a
                // browser's main thread). Returns at once if EPOCH is no longer `seen`.
                unsafe { memory_atomic_wait32(EPOCH.as_ptr(), seen, -1) };
                SLEEPING.fetch_sub(1, SeqCst);
            }
            if join() {
                // Inside the gate, the job (whichever is open) stays alive until we leave it.
                // SAFETY: JOB points at the open job's closure reference, on the caller's stack.
                let f: Job<'_> = unsafe { *(JOB.load(Relaxed) as *const Job<'_>) };
                work(f, ITEMS.load(Relaxed), true);
                GATE.fetch_sub(1, Release);
            }
        }
    }

    /// For tests: a job whose items panic on the workers (the caller's items wait a little, so
    /// that the workers take some). The caller must then panic too, not wait forever. Does
    /// nothing without workers.
    pub fn debug_worker_panic() {
        run(64, &|_| {
            if IS_WORKER.get() {
                panic!("test panic in a thread pool worker");
            }
            for i in 0..1_000_000u32 {
                core::hint::black_box(i);
            }
        });
    }

    /// `(jobs run on the pool, items the workers ran)` since the start.
    pub fn stats() -> (usize, usize) {
        (JOBS.load(Relaxed), WORKER_ITEMS.load(Relaxed))
    }

    /// The address of the i32 that JavaScript sets (to 1, with `Atomics.store`) when a worker's
    /// instance has stopped, so that the caller stops waiting for it.
    pub fn poison_address() -> usize {
        POISONED.as_ptr() as usize
    }
}
