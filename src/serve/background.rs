//! Work that must never delay an admission decision — reconciles, reports, rollups, metrics —
//! runs on the blocking pool, at the lowest scheduling priority (Linux `SCHED_IDLE`): on a busy
//! node the kernel runs a quota check first, and the background gets what is left.

/// The niceness of background threads where `SCHED_IDLE` is refused (0 is the default).
const BACKGROUND_NICE: i32 = 19;

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
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` reads `param` and changes the policy of the calling
        // thread (pid 0); it touches no memory of ours.
        let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
        if idle {
            return;
        }
        let thread = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(thread), BACKGROUND_NICE) {
            tracing::debug!(error = %e, "background work runs at normal priority");
        }
    }
}
