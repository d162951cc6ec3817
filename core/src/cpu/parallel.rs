//! Splitting work over threads: rayon natively; one thread in wasm (no shared memory there yet).

/// Threads kernels may use.
pub(crate) fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

/// Sets the number of CPU threads kernels use (natively; once, before the first kernel runs).
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
