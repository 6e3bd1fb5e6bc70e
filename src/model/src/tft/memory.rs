//! The process's allocator, set once for tensor work.
//!
//! A forward pass over a chunk of windows makes and frees hundreds of tensors of a few
//! megabytes each. With glibc's defaults, an allocation that size may be served by its own
//! `mmap` and a free that leaves the heap's top unused returns it to the kernel, so every
//! pass faults its whole working set in again (page by page, zeroed by the kernel): on the
//! 2-core bench machine that was a tenth to a half of a forward pass, varying from run to
//! run. Keeping tensor-sized blocks on the heap and the freed top of the heap in the
//! process removes that work, at the price of keeping up to [`TRIM_THRESHOLD`] of freed
//! memory mapped between passes.

use std::sync::Once;

/// Blocks below this size come from the heap, not from their own `mmap` (glibc's ceiling
/// for the setting).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Freed memory at the top of the heap is returned to the kernel only beyond this.
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Sets the allocator for tensor work; once per process, from the first model made or
/// loaded. Without glibc it does nothing.
pub fn keep_tensor_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes glibc's allocation parameters; it takes the arena lock
        // itself and is safe to call from any thread at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
        }
    });
}
