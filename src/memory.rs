//! Process-wide allocator settings, applied once by the binary before any thread starts.
//!
//! Two glibc malloc settings, each measured on the 1M-message run of `make bench` (BENCHMARKS.md,
//! issue 16):
//! - **One arena.** glibc gives each thread that finds the main arena busy an arena of its own,
//!   and an arena keeps the pages it once held. The runtime's two worker threads take turns with
//!   the same work (a page of Slack answers parsed on one, its documents serialized on the
//!   other), so each worker's arena grew to about the whole heap peak: two arenas of 5 MB for an
//!   8.8 MB peak. One arena holds the peak once. The threads spend their time waiting on the
//!   network, so its lock is rarely contended.
//! - **A fixed mmap threshold (128 KiB, glibc's starting value).** glibc raises the threshold to
//!   the size of every large block freed, so after the first bulk body is sent, bodies and Slack
//!   pages come from the heap and leave holes the heap keeps. Fixed, they are mapped and given
//!   back as soon as they are freed.
//!
//! Together about 2 MB less peak RSS, with no CPU difference beyond the noise.
//!
//! Invariants: a user's `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` wins (glibc reads them
//! itself, and we leave that setting alone when it is set); on other C libraries this does
//! nothing.

/// The arena count the service runs with unless `MALLOC_ARENA_MAX` says otherwise.
pub const ARENA_MAX: i32 = 1;

/// The mmap threshold (bytes) unless `MALLOC_MMAP_THRESHOLD_` says otherwise.
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// What [`tune_allocator`] did with one setting, for a debug line once logging is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// The service's value was set.
    Applied,
    /// The environment variable is set: glibc uses it.
    LeftToEnvironment,
    /// Not glibc, or glibc refused the setting.
    NotApplied,
}

/// What [`tune_allocator`] did with each setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunings {
    /// [`ARENA_MAX`].
    pub arena_max: Tuning,
    /// [`MMAP_THRESHOLD`].
    pub mmap_threshold: Tuning,
}

/// Whether the service should set a value itself, given the environment variable that sets it.
pub fn ours_to_set(environment: Option<&std::ffi::OsStr>) -> bool {
    environment.is_none()
}

/// Sets [`ARENA_MAX`] and [`MMAP_THRESHOLD`] where the environment does not. Call first thing in
/// `main`, before any thread exists (glibc reads the arena cap when a thread first allocates).
pub fn tune_allocator() -> Tunings {
    let tune = |variable: &str, setting: Setting, value: i32| {
        if ours_to_set(std::env::var_os(variable).as_deref()) {
            set(setting, value)
        } else {
            Tuning::LeftToEnvironment
        }
    };
    Tunings {
        arena_max: tune("MALLOC_ARENA_MAX", Setting::ArenaMax, ARENA_MAX),
        mmap_threshold: tune(
            "MALLOC_MMAP_THRESHOLD_",
            Setting::MmapThreshold,
            MMAP_THRESHOLD,
        ),
    }
}

#[derive(Clone, Copy)]
enum Setting {
    ArenaMax,
    MmapThreshold,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set(setting: Setting, value: i32) -> Tuning {
    let parameter = match setting {
        Setting::ArenaMax => libc::M_ARENA_MAX,
        Setting::MmapThreshold => libc::M_MMAP_THRESHOLD,
    };
    // SAFETY: mallopt only stores a tuning value in glibc's malloc parameters; it takes plain
    // integers, and is called before the runtime starts any thread.
    let accepted = unsafe { libc::mallopt(parameter, value) };
    if accepted == 1 {
        Tuning::Applied
    } else {
        Tuning::NotApplied
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_setting: Setting, _value: i32) -> Tuning {
    Tuning::NotApplied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_malloc_variables_win() {
        assert!(ours_to_set(None));
        assert!(!ours_to_set(Some(std::ffi::OsStr::new("4"))));
        assert!(!ours_to_set(Some(std::ffi::OsStr::new(""))));
    }
}
