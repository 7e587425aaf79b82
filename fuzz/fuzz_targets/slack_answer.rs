//! A Slack answer for one of the methods the source calls (the first byte picks it),
//! decoded strictly and made into documents ([`connectors::fuzzing::slack_answer`]).
#![no_main]

use connectors::fuzzing::{slack_answer, SLACK_METHODS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, body)) = data.split_first() {
        slack_answer(SLACK_METHODS[usize::from(pick) % SLACK_METHODS.len()], body);
    }
});
