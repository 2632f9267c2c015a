//! The CPU time of the calling thread, for what the host spends on a decode step. Wall time
//! would count the time a driver holds the thread inside a submit: lavapipe returns from a
//! submit only once the previous one has run, so a pipelined step's wall time there is the
//! device's, not the host's.

/// Seconds of CPU the calling thread has used (wall-clock seconds since the first call
/// where the platform has no per-thread clock).
pub fn thread_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + 1e-9 * ts.tv_nsec as f64;
        }
    }
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}
