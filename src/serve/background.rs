//! Work that must never delay an admission decision — reconciles, reports, rollups, metrics —
//! runs on the blocking pool, at a lower scheduling priority than the threads that answer
//! requests: on a busy node the kernel runs a quota check first.

/// The niceness of background threads (0 is the default; 19 the lowest priority).
const BACKGROUND_NICE: i32 = 10;

/// Runs `work` on the blocking pool, on a thread of lower priority.
pub fn spawn_background<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(move || {
        lower_priority();
        work()
    })
}

/// Lowers the calling thread's priority (Linux sets it per thread); elsewhere, does nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(thread), BACKGROUND_NICE) {
            tracing::debug!(error = %e, "background work runs at normal priority");
        }
    }
}
