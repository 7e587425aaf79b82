//! The mass-deletion guard: the last check before a full sync's deletion sweep.
//!
//! A source that returns `Ok` after seeing less than it should (a broken answer taken for
//! an empty page, a token that lost access to most channels, a stand-in that lies) makes
//! the sweep delete what was not seen. Upstream has no brake for this (elastic/connectors
//! #3032 wiped indices). Before the sweep the engine counts the documents of the index and
//! those the sweep would delete, and [`check_sweep`] refuses a sweep that would remove more
//! than `service.max_deletion_ratio` of the index, or all of a non-empty index (a sync
//! that produced nothing where there was something is always suspicious). The job then
//! ends in `error` with a message naming the counts and the key, and every document stays.
//!
//! Invariants: the decision is a pure function of the two counts and the ratio; a ratio of
//! 1 (the operator's explicit choice) turns the guard off; the guard never deletes, it
//! only says no. Source-agnostic: it sees counts, not what the documents are.

use std::fmt;

/// The `config.yml` key of the limit.
pub const MAX_DELETION_RATIO_KEY: &str = "service.max_deletion_ratio";

/// The default limit: a full sync may delete at most half of the index.
pub const DEFAULT_MAX_DELETION_RATIO: f64 = 0.5;

/// A sweep the guard refused: what it would have deleted, out of how many.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Which sync asked (`full sync`, `access control sync`).
    pub sync: &'static str,
    /// Documents the sweep would delete (not written by this sync).
    pub stale: u64,
    /// Documents in the index before the sweep.
    pub total: u64,
    /// The limit in force.
    pub max_ratio: f64,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = 100.0 * self.stale as f64 / self.total.max(1) as f64;
        if self.stale >= self.total {
            write!(
                f,
                "deletion refused: the {} would delete all {} documents of the index (it \
                 produced none of them), ",
                self.sync, self.total
            )?;
        } else {
            write!(
                f,
                "deletion refused: the {} would delete {} of the {} documents of the \
                 index ({share:.1}%), ",
                self.sync, self.stale, self.total
            )?;
        }
        write!(
            f,
            "more than `{MAX_DELETION_RATIO_KEY}` ({}) allows; every document was kept. If the \
             source really lost that much (channels removed or unreadable, a shorter history \
             window, new sync rules, users gone), raise `{MAX_DELETION_RATIO_KEY}` in \
             config.yml (1 allows any deletion) and run the {} again",
            self.max_ratio, self.sync
        )
    }
}

impl Refusal {
    /// The same refusal, for another kind of sync.
    pub fn of(self, sync: &'static str) -> Refusal {
        Refusal { sync, ..self }
    }
}

/// Whether a sweep deleting `stale` of the `total` documents of an index may run (pure).
/// Refused when `max_ratio` < 1 and the sweep would delete every document of a non-empty
/// index, or more than `max_ratio` of them.
pub fn check_sweep(total: u64, stale: u64, max_ratio: f64) -> Result<(), Refusal> {
    if stale == 0 || max_ratio >= 1.0 {
        return Ok(());
    }
    let refusal = Refusal {
        sync: "full sync",
        stale,
        total,
        max_ratio,
    };
    // `stale > total` only if the index changed between the counts: treat it as "all".
    if stale >= total || stale as f64 > max_ratio * total as f64 {
        return Err(refusal);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_up_to_half() {
        let r = DEFAULT_MAX_DELETION_RATIO;
        assert_eq!(check_sweep(1000, 0, r), Ok(()));
        assert_eq!(check_sweep(1000, 10, r), Ok(()));
        assert_eq!(check_sweep(1000, 500, r), Ok(()));
        assert!(check_sweep(1000, 501, r).is_err());
        // A sync that kept 30% of the index.
        assert!(check_sweep(1000, 700, r).is_err());
        // Nothing to delete in an empty index.
        assert_eq!(check_sweep(0, 0, r), Ok(()));
    }

    #[test]
    fn never_all_of_a_non_empty_index_unless_off() {
        for ratio in [0.0, 0.5, 0.99, 0.999_999] {
            let refusal = check_sweep(1, 1, ratio).unwrap_err();
            assert_eq!((refusal.stale, refusal.total), (1, 1));
            assert!(check_sweep(1488, 1488, ratio).is_err());
            // Counts that moved between the two requests.
            assert!(check_sweep(3, 5, ratio).is_err());
        }
        // Two documents, one gone: half.
        assert_eq!(check_sweep(2, 1, 0.5), Ok(()));
        // 1 is the operator turning the guard off.
        assert_eq!(check_sweep(1488, 1488, 1.0), Ok(()));
        assert_eq!(check_sweep(10, 7, 1.0), Ok(()));
    }

    #[test]
    fn zero_refuses_every_deletion() {
        assert!(check_sweep(1000, 1, 0.0).is_err());
        assert_eq!(check_sweep(1000, 0, 0.0), Ok(()));
    }

    #[test]
    fn the_message_names_the_counts_and_the_key() {
        let some = check_sweep(1000, 700, 0.5).unwrap_err().to_string();
        assert!(some.contains("delete 700 of the 1000 documents"), "{some}");
        assert!(some.contains("(70.0%)"), "{some}");
        assert!(
            some.contains("`service.max_deletion_ratio` (0.5)"),
            "{some}"
        );
        assert!(some.contains("every document was kept"), "{some}");
        let all = check_sweep(1488, 1488, 0.5).unwrap_err().to_string();
        assert!(all.contains("delete all 1488 documents"), "{all}");
        assert!(all.contains("produced none of them"), "{all}");
    }
}
