//! A view of a node's storage: dims, strides and offset, all in elements. Every view op here is
//! free (no data moves); ops that need contiguous input ask `is_contiguous` and copy otherwise.

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    dims: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

pub(crate) fn contiguous_strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    strides
}

impl Layout {
    pub fn contiguous(dims: &[usize]) -> Self {
        Layout { dims: dims.to_vec(), strides: contiguous_strides(dims), offset: 0 }
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Row-major and dense, starting anywhere (an offset keeps a view contiguous).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.dims.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// A view with new dims over the same values, without a copy. Works for contiguous views and
    /// for any view whose regrouped dims are contiguous among themselves (splitting the last dim
    /// of a column slice, say); errors when a copy is needed.
    pub fn reshape(&self, dims: &[usize]) -> Result<Layout> {
        let n: usize = dims.iter().product();
        if n != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("cannot view {:?} ({} values) as {:?} ({n} values)", self.dims, self.numel(), dims),
            ));
        }
        if self.is_contiguous() {
            return Ok(Layout { dims: dims.to_vec(), strides: contiguous_strides(dims), offset: self.offset });
        }
        self.regroup(dims)
            .map(|strides| Layout { dims: dims.to_vec(), strides, offset: self.offset })
            .ok_or_else(|| Error::shape("reshape", format!("{:?} with strides {:?} cannot be viewed as {dims:?}", self.dims, self.strides)))
    }

    /// Strides for `dims` when each group of new dims falls inside a run of old dims that are
    /// contiguous among themselves.
    fn regroup(&self, dims: &[usize]) -> Option<Vec<usize>> {
        let old: Vec<(usize, usize)> = self.dims.iter().copied().zip(self.strides.iter().copied()).filter(|&(d, _)| d != 1).collect();
        let mut strides = vec![0; dims.len()];
        let mut new_i = 0;
        let mut old_i = 0;
        while old_i < old.len() {
            // A run of old dims [old_i, run_end] that is contiguous among itself.
            let mut run_end = old_i;
            while run_end + 1 < old.len() && old[run_end].1 == old[run_end + 1].1 * old[run_end + 1].0 {
                run_end += 1;
            }
            let run_size: usize = old[old_i..=run_end].iter().map(|&(d, _)| d).product();
            let mut stride = old[run_end].1;
            // New dims fill the run from its innermost end.
            let mut group = Vec::new();
            let mut covered = 1;
            while covered < run_size || (new_i < dims.len() && dims[new_i] == 1 && covered == run_size && group.is_empty()) {
                if new_i >= dims.len() {
                    return None;
                }
                covered *= dims[new_i];
                group.push(new_i);
                new_i += 1;
            }
            if covered != run_size {
                return None;
            }
            for &g in group.iter().rev() {
                strides[g] = stride;
                stride *= dims[g];
            }
            old_i = run_end + 1;
        }
        // Trailing size-1 dims.
        while new_i < dims.len() {
            if dims[new_i] != 1 {
                return None;
            }
            new_i += 1;
        }
        Some(strides)
    }

    pub fn permute(&self, perm: &[usize]) -> Result<Layout> {
        let mut seen = vec![false; self.rank()];
        if perm.len() != self.rank() || perm.iter().any(|&p| p >= self.rank() || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::shape("permute", format!("{perm:?} is not a permutation of {} dims", self.rank())));
        }
        Ok(Layout {
            dims: perm.iter().map(|&p| self.dims[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    pub fn transpose(&self, a: usize, b: usize) -> Result<Layout> {
        if a >= self.rank() || b >= self.rank() {
            return Err(Error::shape("transpose", format!("dims {a},{b} out of rank {}", self.rank())));
        }
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        if dim >= self.rank() || start + len > self.dims[dim] {
            return Err(Error::shape("narrow", format!("[{start}, {}) of dim {dim} is outside {:?}", start + len, self.dims)));
        }
        let mut out = self.clone();
        out.offset += start * self.strides[dim];
        out.dims[dim] = len;
        Ok(out)
    }

    /// Numpy broadcasting: size-1 (or missing leading) dims repeat with stride 0.
    pub fn broadcast_to(&self, dims: &[usize]) -> Result<Layout> {
        if dims.len() < self.rank() {
            return Err(Error::shape("broadcast", format!("{:?} to {dims:?}", self.dims)));
        }
        let lead = dims.len() - self.rank();
        let mut strides = vec![0; dims.len()];
        for i in 0..self.rank() {
            let (d, target) = (self.dims[i], dims[lead + i]);
            if d == target {
                strides[lead + i] = self.strides[i];
            } else if d != 1 {
                return Err(Error::shape("broadcast", format!("{:?} to {dims:?}", self.dims)));
            }
        }
        Ok(Layout { dims: dims.to_vec(), strides, offset: self.offset })
    }

    /// The element index in storage of each position, in row-major order (for copies and tests).
    pub fn storage_indices(&self) -> StorageIndices<'_> {
        StorageIndices { layout: self, index: vec![0; self.rank()], next: Some(self.offset), remaining: self.numel() }
    }
}

/// Broadcast shape of two dim lists (numpy rules).
pub fn broadcast_dims(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::shape("broadcast", format!("{a:?} and {b:?}"))),
        };
    }
    Ok(out)
}

pub struct StorageIndices<'a> {
    layout: &'a Layout,
    index: Vec<usize>,
    next: Option<usize>,
    remaining: usize,
}

impl Iterator for StorageIndices<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.next?;
        let mut pos = current;
        for d in (0..self.layout.rank()).rev() {
            self.index[d] += 1;
            pos += self.layout.strides[d];
            if self.index[d] < self.layout.dims[d] {
                self.next = Some(pos);
                return Some(current);
            }
            pos -= self.layout.strides[d] * self.index[d];
            self.index[d] = 0;
        }
        self.next = None;
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuted_view_walks_storage_in_transposed_order() {
        let l = Layout::contiguous(&[2, 3]).transpose(0, 1).unwrap();
        assert_eq!(l.storage_indices().collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        assert!(!l.is_contiguous());
    }

    #[test]
    fn narrow_and_broadcast() {
        let l = Layout::contiguous(&[4, 3]).narrow(0, 1, 2).unwrap();
        assert!(l.is_contiguous());
        assert_eq!(l.storage_indices().collect::<Vec<_>>(), vec![3, 4, 5, 6, 7, 8]);
        let b = Layout::contiguous(&[3]).broadcast_to(&[2, 3]).unwrap();
        assert_eq!(b.storage_indices().collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 2]);
        assert!(Layout::contiguous(&[2]).broadcast_to(&[3]).is_err());
        assert!(Layout::contiguous(&[2, 3]).reshape(&[7]).is_err());
    }

    #[test]
    fn reshape_splits_a_column_slice_without_copy() {
        // Columns [6, 12) of a [4, 18] matrix viewed as [4, 2, 3]: q of a fused qkv projection.
        let slice = Layout::contiguous(&[4, 18]).narrow(1, 6, 6).unwrap();
        let v = slice.reshape(&[4, 2, 3]).unwrap();
        assert_eq!((v.strides(), v.offset()), (&[18, 3, 1][..], 6));
        assert_eq!(v.storage_indices().collect::<Vec<_>>(), slice.storage_indices().collect::<Vec<_>>());
        // Merging the rows of that slice would need a copy.
        assert!(slice.reshape(&[24]).is_err());
        let t = Layout::contiguous(&[2, 3]).transpose(0, 1).unwrap();
        assert!(t.reshape(&[6]).is_err());
        assert_eq!(t.reshape(&[3, 2, 1]).unwrap().strides(), &[1, 3, 0][..]);
    }
}

impl Layout {
    /// A layout from parts the caller has already validated against the storage.
    pub(crate) fn from_raw(dims: Vec<usize>, strides: Vec<usize>, offset: usize) -> Layout {
        Layout { dims, strides, offset }
    }
}
