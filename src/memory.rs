//! Process-wide allocator settings, applied once by the binary before any thread starts.
//!
//! glibc's malloc gives each thread that finds the main arena busy an arena of its own, and an
//! arena keeps the pages it once held. The runtime's two worker threads take turns with the same
//! work (a page of Slack answers parsed on one, its documents serialized on the other), so each
//! worker's arena grows to about the whole heap peak: on the 1M-message run of `make bench` two
//! arenas of 5 MB each held an 8.8 MB heap peak. With one arena the process holds the peak once.
//! The service's threads spend their time waiting on the network, so the arena's lock is rarely
//! contended: the same bench measured no CPU difference (BENCHMARKS.md, issue 16).
//!
//! Invariants: a user's `MALLOC_ARENA_MAX` wins (glibc reads the variable itself, and we leave
//! the setting alone when it is set); on other C libraries this does nothing.

/// The arena count the service runs with unless `MALLOC_ARENA_MAX` says otherwise.
pub const ARENA_MAX: i32 = 1;

/// What [`tune_allocator`] did, for a debug line once logging is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// The arena count was set to [`ARENA_MAX`].
    Applied,
    /// `MALLOC_ARENA_MAX` is set: glibc uses it.
    LeftToEnvironment,
    /// Not glibc, or glibc refused the setting.
    NotApplied,
}

/// Whether the service should set the arena count itself, given `MALLOC_ARENA_MAX`.
pub fn arena_max_wanted(environment: Option<&std::ffi::OsStr>) -> bool {
    environment.is_none()
}

/// Caps glibc's malloc arenas at [`ARENA_MAX`]. Call first thing in `main`, before any thread
/// exists (glibc reads the setting when a thread first allocates).
pub fn tune_allocator() -> Tuning {
    if !arena_max_wanted(std::env::var_os("MALLOC_ARENA_MAX").as_deref()) {
        return Tuning::LeftToEnvironment;
    }
    set_arena_max(ARENA_MAX)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: i32) -> Tuning {
    // SAFETY: mallopt only stores a tuning value in glibc's malloc parameters; it takes plain
    // integers, and is called before the runtime starts any thread.
    let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    if accepted == 1 {
        Tuning::Applied
    } else {
        Tuning::NotApplied
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> Tuning {
    Tuning::NotApplied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_malloc_arena_max_wins() {
        assert!(arena_max_wanted(None));
        assert!(!arena_max_wanted(Some(std::ffi::OsStr::new("4"))));
        assert!(!arena_max_wanted(Some(std::ffi::OsStr::new(""))));
    }
}
