//! The process's memory allocator: the system's, except that blocks of
//! 2 MiB or more are mappings of their own, aligned to 2 MiB and marked for
//! transparent huge pages.
//!
//! Verification reads and builds a few large buffers (a targets file of
//! several megabytes, the verified state, the canonical string a signature
//! covers) once per run. Fresh memory in 4 KiB pages costs a fault and a
//! page of zeroing per 4 KiB on first touch, and as much again to give
//! back: for a 4.7 MB targets file that was two thirds of reading it. In
//! 2 MiB pages (where the kernel gives them: `transparent_hugepage` set to
//! `madvise` or `always`) it is a few faults; elsewhere the mapping behaves
//! as any other. Nothing else changes: small blocks, and blocks aligned to
//! more than 2 MiB, are the system allocator's.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large (and this is their alignment) are mapped.
const BIG: usize = 2 << 20;

/// The allocator (see the module documentation).
pub struct Alloc;

fn is_big(l: &Layout) -> bool {
    l.size() >= BIG && l.align() <= BIG
}

/// The length of the mapping that holds `size` bytes: whole pages (the
/// 2 MiB stretches it covers can be huge pages; the rest is in small
/// pages, so that no more is zeroed than is used).
fn mapped(size: usize) -> usize {
    let page = page_size();
    size.div_ceil(page) * page
}

/// The system's page size (4 KiB where it cannot be read).
fn page_size() -> usize {
    // SAFETY: sysconf reads a value; it has no preconditions
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 && (n as usize).is_power_of_two() && (n as usize) <= BIG => n as usize,
        _ => 4096,
    }
}

/// Maps `mapped(size)` bytes at a 2 MiB boundary (zeroed, as every fresh
/// anonymous mapping); null if the system has no room.
unsafe fn map_big(size: usize) -> *mut u8 {
    let len = mapped(size);
    let Some(with_slack) = len.checked_add(BIG) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a fresh private anonymous mapping; no existing memory is
    // touched
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            with_slack,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let start = raw as usize;
    let aligned = start.next_multiple_of(BIG);
    let (head, tail) = (aligned - start, start + with_slack - (aligned + len));
    // SAFETY: the unaligned head and the tail beyond `len` are parts of the
    // mapping just made, used by nothing
    unsafe {
        if head > 0 {
            libc::munmap(raw, head);
        }
        if tail > 0 {
            libc::munmap((aligned + len) as *mut libc::c_void, tail);
        }
        // a hint: where huge pages are not available it does nothing
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    aligned as *mut u8
}

// SAFETY: every block is either the system allocator's (small blocks and
// blocks aligned to more than 2 MiB, allocated, resized and freed by it) or
// a mapping of `mapped(size)` bytes at a 2 MiB boundary made by `map_big`
// (which satisfies any alignment up to 2 MiB), resized by `mremap` and
// freed by `munmap` with that same length; a block changes kind on
// `realloc` only by a copy into a new block.
unsafe impl GlobalAlloc for Alloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if is_big(&l) {
            // SAFETY: see the impl
            unsafe { map_big(l.size()) }
        } else {
            // SAFETY: the caller's contract, passed on
            unsafe { System.alloc(l) }
        }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if is_big(&l) {
            // SAFETY: see the impl; fresh mappings are zeroed
            unsafe { map_big(l.size()) }
        } else {
            // SAFETY: the caller's contract, passed on
            unsafe { System.alloc_zeroed(l) }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if is_big(&l) {
            // SAFETY: `p` is a mapping of `mapped(l.size())` bytes
            unsafe {
                libc::munmap(p as *mut libc::c_void, mapped(l.size()));
            }
        } else {
            // SAFETY: the caller's contract, passed on
            unsafe { System.dealloc(p, l) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (all of it): the caller's contract; `new` has the
        // alignment of `l` and a size no smaller than what is copied
        unsafe {
            let new = Layout::from_size_align_unchecked(new_size, l.align());
            match (is_big(&l), is_big(&new)) {
                (false, false) => System.realloc(p, l, new_size),
                // a mapping moved by the kernel keeps page alignment, which
                // is all a block aligned to a page or less needs
                (true, true) if l.align() <= page_size() => {
                    let (from, to) = (mapped(l.size()), mapped(new_size));
                    if from == to {
                        return p;
                    }
                    let q = libc::mremap(p as *mut libc::c_void, from, to, libc::MREMAP_MAYMOVE);
                    if q == libc::MAP_FAILED {
                        return std::ptr::null_mut();
                    }
                    libc::madvise(q, to, libc::MADV_HUGEPAGE);
                    q as *mut u8
                }
                _ => {
                    let q = self.alloc(new);
                    if !q.is_null() {
                        std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                        self.dealloc(p, l);
                    }
                    q
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(p: *mut u8, n: usize, seed: u8) {
        for i in (0..n).step_by(4093).chain(n.saturating_sub(1)..n) {
            // SAFETY: `i < n`, inside the block
            unsafe { *p.add(i) = seed.wrapping_add(i as u8) }
        }
    }

    fn check(p: *const u8, n: usize, seed: u8) {
        for i in (0..n).step_by(4093) {
            // SAFETY: `i < n`, inside the block
            assert_eq!(
                unsafe { *p.add(i) },
                seed.wrapping_add(i as u8),
                "byte {i} of {n}"
            );
        }
    }

    /// Blocks of every kind are aligned, hold what was written, keep it
    /// when resized across the 2 MiB line in both directions, and zeroed
    /// blocks are zero.
    #[test]
    fn blocks_are_aligned_keep_their_bytes_and_resize_across_kinds() {
        let a = Alloc;
        let sizes = [1, 4096, BIG - 1, BIG, BIG + 1, 3 * BIG + 17, 5 << 20];
        for align in [1, 8, 4096, 1 << 16, BIG, 2 * BIG] {
            for &n in &sizes {
                let l = Layout::from_size_align(n, align).unwrap();
                // SAFETY: non-zero sizes, valid layouts; every block is
                // freed with the layout it has
                unsafe {
                    let z = a.alloc_zeroed(l);
                    assert!(!z.is_null() && (z as usize).is_multiple_of(align));
                    for i in (0..n).step_by(4093) {
                        assert_eq!(*z.add(i), 0);
                    }
                    a.dealloc(z, l);
                    let p = a.alloc(l);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{n} {align}"
                    );
                    if is_big(&l) {
                        assert_eq!(p as usize % BIG, 0, "a mapped block is 2 MiB aligned");
                    }
                    fill(p, n, 3);
                    check(p, n, 3);
                    let mut cur = (p, l);
                    for &m in sizes.iter().rev().chain(&sizes) {
                        let q = a.realloc(cur.0, cur.1, m);
                        assert!(
                            !q.is_null() && (q as usize).is_multiple_of(align),
                            "{n}->{m} {align}"
                        );
                        let kept = cur.1.size().min(m);
                        check(q, kept, 3);
                        fill(q, m, 3);
                        cur = (q, Layout::from_size_align(m, align).unwrap());
                    }
                    a.dealloc(cur.0, cur.1);
                }
            }
        }
    }

    /// The program's own large buffers go through it.
    #[test]
    fn large_vectors_are_mapped_blocks() {
        let v = vec![7u8; 3 << 20];
        assert_eq!(v.as_ptr() as usize % BIG, 0);
        let mut s = String::new();
        while s.len() < 5 << 20 {
            s.push_str("0123456789abcdef");
        }
        assert!(s.len() >= 5 << 20 && s.ends_with("cdef"));
        drop(v);
    }
}
