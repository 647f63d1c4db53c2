//! A hint to the CPU to start loading memory a loop will read a few iterations later, so
//! that reads scattered over a large table overlap instead of waiting one after another.

/// How many places ahead of the one it reads a loop starts loading: far enough for a load to
/// arrive (a place's work takes longer than a trip to memory divided by this), near enough
/// that what arrived is still in cache.
pub const AHEAD: usize = 8;

/// Bytes the CPU loads at once.
const CACHE_LINE: usize = 64;

/// Starts loading every cache line `place` spans; reads nothing and changes nothing.
#[inline]
pub fn prefetch<T>(place: &T) {
    let start = std::ptr::from_ref(place).cast::<i8>();
    let last = size_of::<T>().saturating_sub(1);
    for offset in (0..last).step_by(CACHE_LINE).chain([last]) {
        line(start.wrapping_add(offset));
    }
}

#[inline]
fn line(address: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetch` reads no memory and cannot fault, whatever the address (SSE, which
    // every x86_64 CPU has).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
