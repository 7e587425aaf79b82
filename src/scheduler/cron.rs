//! Quartz cron expressions: parsing and "next fire time" computation, in UTC.
//!
//! The connector document's `scheduling.*.interval` fields hold Quartz cron
//! expressions (for example `"0 0 0 * * ?"` or `"1 * * * * ?"`). This module
//! turns such a string into a [`CronSchedule`] and computes the next fire time
//! strictly after a given instant. It is pure: no clock, no I/O, no time zones.
//!
//! # Fields
//!
//! Six or seven whitespace-separated fields, in this order:
//!
//! | field        | values                          | special tokens  |
//! |--------------|---------------------------------|-----------------|
//! | seconds      | 0-59                            | `, - * /`       |
//! | minutes      | 0-59                            | `, - * /`       |
//! | hours        | 0-23                            | `, - * /`       |
//! | day-of-month | 1-31                            | `, - * / ? L W` |
//! | month        | 1-12 or `JAN`-`DEC`             | `, - * /`       |
//! | day-of-week  | 1-7 (1 = Sunday) or `SUN`-`SAT` | `, - * / ? L #` |
//! | year (opt.)  | 1970-2199                       | `, - * /`       |
//!
//! Names are case-insensitive, as are the letters `L` and `W`.
//!
//! # Syntax
//!
//! * `*` every value; `a` a single value; `a-b` an inclusive range; `*/n`,
//!   `a/n` (from `a` to the field maximum) and `a-b/n` steps (`n` from 1 up
//!   to the field's largest value: 1-59 for seconds, 1-23 for hours, 1-31,
//!   1-12, 1-7, and 1-229 for years); `x,y,z` lists, whose elements may be
//!   any of the previous forms.
//! * Ranges may wrap around as in Quartz ("overflowing ranges"): `22-2` in the
//!   hours field is 22, 23, 0, 1, 2; `FRI-MON` is Friday to Monday; `NOV-FEB`
//!   is November to February; `28-3` in day-of-month is 28-31 and 1-3. Steps
//!   walk the wrapped sequence (`22-2/2` is 22, 0, 2). Year ranges cannot wrap.
//! * `?` ("no specific value") only in day-of-month or day-of-week, and only as
//!   the whole field.
//! * Day-of-month: `L` is the last day of the month; `L-n` is `n` days before
//!   it (0 ≤ n ≤ 30; `L-2` in January is the 29th); `nW` is the weekday
//!   (Monday-Friday) nearest to day `n` without leaving the month (a Saturday
//!   1st gives Monday the 3rd, a Sunday last day gives the Friday before);
//!   `LW` is the last weekday of the month and `L-nW` the weekday nearest to
//!   `L-n`. A month that has no day `n` (e.g. `31W` in April) does not fire.
//! * Day-of-week: `L` alone means 7 (Saturday); `xL` is the last weekday `x`
//!   of the month (`6L` or `FRIL`: last Friday); `x#k` is the `k`-th weekday
//!   `x` of the month, `k` in 1-5 (`6#3`: third Friday; a month without a
//!   fifth such day does not fire for `#5`).
//! * `L`, `W`, `#` forms must be the only element of their field (no lists),
//!   as Quartz requires.
//!
//! # Day-of-month / day-of-week rule
//!
//! Quartz requires exactly one of the two day fields to be `?`. This module
//! is slightly more lenient, because Kibana and users commonly write
//! `"0 0 0 * * *"`:
//!
//! * both `?`: rejected;
//! * one `?` and the other anything: the other field decides;
//! * both a bare `*`: every day;
//! * one a bare `*` and the other a real constraint: the `*` is read as `?`,
//!   so the constraint alone decides (`"0 0 0 * * MON"` fires on Mondays);
//! * both real constraints (neither `?` nor a bare `*`): rejected, as Quartz
//!   does ("support for specifying both a day-of-week and a day-of-month
//!   parameter is not implemented").
//!
//! # Evaluation
//!
//! * Everything is UTC; there are no time zones and no DST gaps.
//! * The seconds field is honoured (unlike the Python connectors framework,
//!   which drops it): `"*/10 * * * * ?"` fires every ten seconds.
//! * [`CronSchedule::next_after`] returns the first fire time strictly after
//!   the given instant, whose sub-second part is ignored. The search walks
//!   the fields from year down to second using bit sets, so it costs a few
//!   hundred nanoseconds typically and a few microseconds at worst (an
//!   expression that never fires again scans every remaining year). Fire times are limited to the years
//!   1970-2199 (the Quartz year range), which bounds the search: an
//!   expression with no fire time left before the end of 2199 (a past year,
//!   February 30th, ...) yields `None`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// First year a schedule can fire in.
const MIN_YEAR: i32 = 1970;
/// Last year a schedule can fire in; bounds the search of `next_after`.
const MAX_YEAR: i32 = 2199;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field of a cron expression, used in [`CronError`] to say where the
/// problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    Seconds,
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl CronField {
    fn name(self) -> &'static str {
        match self {
            CronField::Seconds => "seconds",
            CronField::Minutes => "minutes",
            CronField::Hours => "hours",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }

    /// Inclusive range of plain values.
    fn bounds(self) -> (u32, u32) {
        match self {
            CronField::Seconds | CronField::Minutes => (0, 59),
            CronField::Hours => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (1, 7),
            CronField::Year => (MIN_YEAR as u32, MAX_YEAR as u32),
        }
    }

    /// Largest step allowed after `/`.
    fn max_step(self) -> u32 {
        let (min, max) = self.bounds();
        match self {
            CronField::Year => max - min,
            _ => max,
        }
    }

    fn names(self) -> Option<(&'static [&'static str], &'static str)> {
        match self {
            CronField::Month => Some((&MONTH_NAMES, "JAN-DEC")),
            CronField::DayOfWeek => Some((&DAY_NAMES, "SUN-SAT")),
            _ => None,
        }
    }

    fn is_day(self) -> bool {
        matches!(self, CronField::DayOfMonth | CronField::DayOfWeek)
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a special character may be used, for error messages.
fn special_home(special: char) -> &'static str {
    match special {
        'L' => "the day-of-month and day-of-week fields",
        'W' => "the day-of-month field",
        _ => "the day-of-week field",
    }
}

/// Why a cron expression was rejected. Every message starts with
/// ``invalid cron expression `<expr>`: `` and names the field and token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CronError {
    #[error(
        "invalid cron expression `{expr}`: expected 6 or 7 whitespace-separated fields \
         (seconds minutes hours day-of-month month day-of-week [year]), found {found}"
    )]
    FieldCount { expr: String, found: usize },

    #[error(
        "invalid cron expression `{expr}`: {field} field value {value} out of range {min}-{max}"
    )]
    ValueOutOfRange {
        expr: String,
        field: CronField,
        value: u32,
        min: u32,
        max: u32,
    },

    #[error("invalid cron expression `{expr}`: {field} field step {step} in `{token}` out of range 1-{max}")]
    InvalidStep {
        expr: String,
        field: CronField,
        token: String,
        step: u32,
        max: u32,
    },

    #[error("invalid cron expression `{expr}`: {field} field has unknown name `{token}` (allowed: numbers or {allowed})")]
    UnknownName {
        expr: String,
        field: CronField,
        token: String,
        allowed: &'static str,
    },

    #[error(
        "invalid cron expression `{expr}`: {field} field has malformed token `{token}`: {reason}"
    )]
    Malformed {
        expr: String,
        field: CronField,
        token: String,
        reason: String,
    },

    #[error(
        "invalid cron expression `{expr}`: `?` is not allowed in the {field} field \
         (only in the day-of-month or day-of-week field)"
    )]
    QuestionMarkNotAllowed { expr: String, field: CronField },

    #[error(
        "invalid cron expression `{expr}`: `{special}` is not allowed in the {field} field \
         (found in `{token}`; it is only allowed in {home})",
        home = special_home(*.special)
    )]
    SpecialNotAllowed {
        expr: String,
        field: CronField,
        token: String,
        special: char,
    },

    #[error("invalid cron expression `{expr}`: `{token}` must be the only value in the {field} field (no lists)")]
    NotAlone {
        expr: String,
        field: CronField,
        token: String,
    },

    #[error("invalid cron expression `{expr}`: {field} field {what} {value} in `{token}` out of range {min}-{max}")]
    ModifierOutOfRange {
        expr: String,
        field: CronField,
        token: String,
        what: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },

    #[error(
        "invalid cron expression `{expr}`: support for specifying both a day-of-week and a \
         day-of-month parameter is not implemented; put `?` in one of them"
    )]
    BothDaysSpecified { expr: String },

    #[error(
        "invalid cron expression `{expr}`: `?` can only be specified for the day-of-month \
         or the day-of-week field, not both"
    )]
    BothDaysUnspecified { expr: String },
}

/// Day-of-month constraint (day numbers are 1-31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DomRule {
    /// Bit `d` set for each listed day `d`.
    Days(u64),
    /// `L` (0) or `L-n`: the last day minus `n`.
    LastOffset(u32),
    /// `nW`: the weekday nearest to day `n`.
    NearestWeekday(u32),
    /// `LW` (0) or `L-nW`: the weekday nearest to the last day minus `n`.
    LastOffsetWeekday(u32),
}

/// Day-of-week constraint (weekdays are 1 = Sunday ... 7 = Saturday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DowRule {
    /// Bit `w` set for each listed weekday `w`.
    Days(u64),
    /// `wL`: the last weekday `w` of the month.
    Last(u32),
    /// `w#k`: the `k`-th weekday `w` of the month.
    Nth(u32, u32),
}

/// The combined day rule: at most one of the two day fields constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRule {
    Every,
    Dom(DomRule),
    Dow(DowRule),
}

/// A day field as written, before the two day fields are combined.
enum DayField<T> {
    Question,
    Star,
    Spec(T),
}

/// A parsed Quartz cron expression. See the module documentation for the
/// supported syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    source: String,
    seconds: u64,
    minutes: u64,
    hours: u64,
    months: u64,
    days: DayRule,
    /// Bit `y - MIN_YEAR` set for each allowed year `y`.
    years: [u64; 4],
}

impl CronSchedule {
    /// Parses a Quartz cron expression (6 or 7 fields).
    pub fn parse(expr: &str) -> Result<CronSchedule, CronError> {
        let source = expr.trim();
        let parts: Vec<&str> = source.split_whitespace().collect();
        if !(6..=7).contains(&parts.len()) {
            return Err(CronError::FieldCount {
                expr: source.to_string(),
                found: parts.len(),
            });
        }
        let p = Parser { expr: source };
        let seconds = bits(&p.list(CronField::Seconds, parts[0])?);
        let minutes = bits(&p.list(CronField::Minutes, parts[1])?);
        let hours = bits(&p.list(CronField::Hours, parts[2])?);
        let dom = p.day_of_month(parts[3])?;
        let months = bits(&p.list(CronField::Month, parts[4])?);
        let dow = p.day_of_week(parts[5])?;
        let years = match parts.get(6) {
            None => all_years(),
            Some(field) => {
                let mut years = [0u64; 4];
                for y in p.list(CronField::Year, field)? {
                    let i = (y - MIN_YEAR as u32) as usize;
                    years[i / 64] |= 1 << (i % 64);
                }
                years
            }
        };
        let days = match (dom, dow) {
            (DayField::Question, DayField::Question) => {
                return Err(CronError::BothDaysUnspecified { expr: p.expr() });
            }
            (DayField::Spec(_), DayField::Spec(_)) => {
                return Err(CronError::BothDaysSpecified { expr: p.expr() });
            }
            (DayField::Spec(rule), _) => DayRule::Dom(rule),
            (_, DayField::Spec(rule)) => DayRule::Dow(rule),
            _ => DayRule::Every,
        };
        Ok(CronSchedule {
            source: source.to_string(),
            seconds,
            minutes,
            hours,
            months,
            days,
            years,
        })
    }

    /// Next fire time strictly after `after` (sub-second part of `after`
    /// ignored), or None if none (e.g. year field in the past, Feb 30).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // `timestamp()` floors, so this is the first whole second after `after`.
        let start = DateTime::from_timestamp(after.timestamp().checked_add(1)?, 0)?;
        let (sy, smo, sd, sh, smi, ss) = if start.year() < MIN_YEAR {
            (MIN_YEAR, 1, 1, 0, 0, 0)
        } else {
            (
                start.year(),
                start.month(),
                start.day(),
                start.hour(),
                start.minute(),
                start.second(),
            )
        };
        let mut year_from = sy;
        while let Some(year) = self.next_year(year_from) {
            // While `year == sy` (and so on down), the lower bound still applies.
            let year_bound = year == sy;
            let mut month_from = if year_bound { smo } else { 1 };
            while let Some(month) = next_bit(self.months, month_from) {
                let month_bound = year_bound && month == smo;
                let day_mask = self.day_mask(year, month);
                let mut day_from = if month_bound { sd } else { 1 };
                while let Some(day) = next_bit(day_mask, day_from) {
                    let time = if month_bound && day == sd {
                        self.next_time(sh, smi, ss)
                    } else {
                        self.next_time(0, 0, 0)
                    };
                    if let Some((h, mi, s)) = time {
                        return NaiveDate::from_ymd_opt(year, month, day)?
                            .and_hms_opt(h, mi, s)
                            .map(|dt| dt.and_utc());
                    }
                    day_from = day + 1;
                }
                month_from = month + 1;
            }
            year_from = year + 1;
        }
        None
    }

    /// Whether `dt` (sub-second part ignored) is a fire time of this schedule.
    pub fn matches(&self, dt: DateTime<Utc>) -> bool {
        self.matches_date(dt.date_naive()) && self.matches_time(dt.hour(), dt.minute(), dt.second())
    }

    /// The expression as given to [`CronSchedule::parse`], trimmed.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn matches_time(&self, hour: u32, minute: u32, second: u32) -> bool {
        has_bit(self.hours, hour) && has_bit(self.minutes, minute) && has_bit(self.seconds, second)
    }

    /// Date predicate, written directly from the definitions (the search
    /// uses the independent month masks of [`CronSchedule::day_mask`]).
    fn matches_date(&self, date: NaiveDate) -> bool {
        let year = date.year();
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) || !self.has_year(year) {
            return false;
        }
        if !has_bit(self.months, date.month()) {
            return false;
        }
        let day = date.day();
        let last = days_in_month(year, date.month());
        let weekday = date.weekday().num_days_from_sunday() + 1;
        match self.days {
            DayRule::Every => true,
            DayRule::Dom(DomRule::Days(mask)) => has_bit(mask, day),
            DayRule::Dom(DomRule::LastOffset(n)) => day + n == last,
            DayRule::Dom(DomRule::NearestWeekday(n)) => n <= last && is_nearest_weekday(date, n),
            DayRule::Dom(DomRule::LastOffsetWeekday(n)) => {
                n < last && is_nearest_weekday(date, last - n)
            }
            DayRule::Dow(DowRule::Days(mask)) => has_bit(mask, weekday),
            DayRule::Dow(DowRule::Last(w)) => weekday == w && day + 7 > last,
            DayRule::Dow(DowRule::Nth(w, k)) => weekday == w && (day - 1) / 7 + 1 == k,
        }
    }

    fn has_year(&self, year: i32) -> bool {
        let i = (year - MIN_YEAR) as usize;
        (self.years[i / 64] >> (i % 64)) & 1 == 1
    }

    /// First allowed year `>= from`, within the search horizon.
    fn next_year(&self, from: i32) -> Option<i32> {
        (from.max(MIN_YEAR)..=MAX_YEAR).find(|&y| self.has_year(y))
    }

    /// Earliest allowed time of day `>= (h0, m0, s0)`.
    fn next_time(&self, h0: u32, m0: u32, s0: u32) -> Option<(u32, u32, u32)> {
        let mut hour_from = h0;
        while let Some(h) = next_bit(self.hours, hour_from) {
            let hour_bound = h == h0;
            let mut minute_from = if hour_bound { m0 } else { 0 };
            while let Some(m) = next_bit(self.minutes, minute_from) {
                let second_from = if hour_bound && m == m0 { s0 } else { 0 };
                if let Some(s) = next_bit(self.seconds, second_from) {
                    return Some((h, m, s));
                }
                minute_from = m + 1;
            }
            hour_from = h + 1;
        }
        None
    }

    /// Bit `d` set for each day `d` of `year`-`month` the day rule allows.
    fn day_mask(&self, year: i32, month: u32) -> u64 {
        let last = days_in_month(year, month);
        let all = ((1u64 << (last + 1)) - 1) & !1;
        // Weekday of the 1st, 0 = Sunday.
        let first = match NaiveDate::from_ymd_opt(year, month, 1) {
            Some(d) => d.weekday().num_days_from_sunday(),
            None => return 0,
        };
        let weekday_of = |day: u32| (first + day - 1) % 7;
        match self.days {
            DayRule::Every => all,
            DayRule::Dom(DomRule::Days(mask)) => mask & all,
            DayRule::Dom(DomRule::LastOffset(n)) if n < last => 1 << (last - n),
            DayRule::Dom(DomRule::NearestWeekday(n)) if n <= last => {
                1 << nearest_weekday(n, weekday_of(n), last)
            }
            DayRule::Dom(DomRule::LastOffsetWeekday(n)) if n < last => {
                1 << nearest_weekday(last - n, weekday_of(last - n), last)
            }
            DayRule::Dom(_) => 0,
            DayRule::Dow(DowRule::Days(mask)) => {
                // 7-bit pattern, bit 0 = weekday of the 1st, repeated weekly.
                let pattern = (mask >> 1) & 0x7f;
                let rotated = ((pattern >> first) | (pattern << (7 - first))) & 0x7f;
                let weeks = rotated | rotated << 7 | rotated << 14 | rotated << 21 | rotated << 28;
                (weeks << 1) & all
            }
            DayRule::Dow(DowRule::Last(w)) => {
                let back = (weekday_of(last) + 7 - (w - 1)) % 7;
                1 << (last - back)
            }
            DayRule::Dow(DowRule::Nth(w, k)) => {
                let day = 1 + (w - 1 + 7 - first) % 7 + 7 * (k - 1);
                if day <= last {
                    1 << day
                } else {
                    0
                }
            }
        }
    }
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronSchedule::parse(s)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Weekday (Mon-Fri) nearest to `target`, not leaving the month; `weekday`
/// is the weekday of `target`, 0 = Sunday.
fn nearest_weekday(target: u32, weekday: u32, last: u32) -> u32 {
    match weekday {
        6 if target > 1 => target - 1,
        6 => target + 2,
        0 if target < last => target + 1,
        0 => target - 2,
        _ => target,
    }
}

/// Whether `date` is the Monday-Friday day of its month closest to day
/// `target` (by brute force over the month).
fn is_nearest_weekday(date: NaiveDate, target: u32) -> bool {
    let day = date.day();
    let last = days_in_month(date.year(), date.month());
    let weekday0 = i64::from(date.weekday().num_days_from_sunday());
    let is_weekday =
        |d: u32| (1..=5).contains(&(weekday0 + i64::from(d) - i64::from(day)).rem_euclid(7));
    if !is_weekday(day) {
        return false;
    }
    let distance = day.abs_diff(target);
    (1..=last).all(|d| d == day || !is_weekday(d) || d.abs_diff(target) > distance)
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

fn has_bit(mask: u64, bit: u32) -> bool {
    bit < 64 && (mask >> bit) & 1 == 1
}

/// Lowest set bit of `mask` at position `>= from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

fn bits(values: &[u32]) -> u64 {
    values.iter().fold(0, |acc, v| acc | 1 << v)
}

fn all_years() -> [u64; 4] {
    let mut years = [0u64; 4];
    for i in 0..=(MAX_YEAR - MIN_YEAR) as usize {
        years[i / 64] |= 1 << (i % 64);
    }
    years
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Field parsers; `expr` is only kept for error messages.
struct Parser<'a> {
    expr: &'a str,
}

impl Parser<'_> {
    fn expr(&self) -> String {
        self.expr.to_string()
    }

    fn malformed(&self, field: CronField, token: &str, reason: impl Into<String>) -> CronError {
        CronError::Malformed {
            expr: self.expr(),
            field,
            token: token.to_string(),
            reason: reason.into(),
        }
    }

    fn not_alone(&self, field: CronField, token: &str) -> CronError {
        CronError::NotAlone {
            expr: self.expr(),
            field,
            token: token.to_string(),
        }
    }

    /// A comma-separated list of `*`, values, ranges and steps.
    fn list(&self, field: CronField, raw: &str) -> Result<Vec<u32>, CronError> {
        let mut out = Vec::new();
        for item in raw.split(',') {
            if item.is_empty() {
                return Err(self.malformed(field, raw, "empty list element"));
            }
            self.item(field, item, &mut out)?;
        }
        Ok(out)
    }

    fn item(&self, field: CronField, item: &str, out: &mut Vec<u32>) -> Result<(), CronError> {
        self.check_misplaced(field, item)?;
        let (min, max) = field.bounds();
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(self.step(field, item, step)?)),
            None => (item, None),
        };
        if base.is_empty() {
            return Err(self.malformed(field, item, "missing value before `/`"));
        }
        let (start, end) = if base == "*" {
            (min, max)
        } else if let Some((a, b)) = base.split_once('-') {
            (self.value(field, item, a)?, self.value(field, item, b)?)
        } else {
            let a = self.value(field, item, base)?;
            (a, if step.is_some() { max } else { a })
        };
        let step = step.unwrap_or(1) as usize;
        if start <= end {
            out.extend((start..=end).step_by(step));
        } else if field == CronField::Year {
            return Err(self.malformed(
                field,
                item,
                "year ranges must be ascending (they cannot wrap around)",
            ));
        } else {
            // Overflowing range: start..=max then min..=end.
            let span = max - min + 1;
            let len = end + span - start + 1;
            out.extend(
                (0..len)
                    .step_by(step)
                    .map(|i| min + (start - min + i) % span),
            );
        }
        Ok(())
    }

    /// Rejects `?`, `L`, `W` and `#` where they have no meaning, with a
    /// message naming the character.
    fn check_misplaced(&self, field: CronField, item: &str) -> Result<(), CronError> {
        let up = item.to_ascii_uppercase();
        if up.contains('?') {
            return Err(if field.is_day() {
                self.malformed(field, item, "`?` must be the whole field")
            } else {
                CronError::QuestionMarkNotAllowed {
                    expr: self.expr(),
                    field,
                }
            });
        }
        let special = |c: char| CronError::SpecialNotAllowed {
            expr: self.expr(),
            field,
            token: item.to_string(),
            special: c,
        };
        if up.contains('#') && field != CronField::DayOfWeek {
            return Err(special('#'));
        }
        let is_value =
            |s: &str| is_digits(s) || field.names().is_some_and(|(names, _)| names.contains(&s));
        for c in ['L', 'W'] {
            let looks_special = up == c.to_string()
                || up.strip_suffix(c).is_some_and(is_value)
                || (c == 'L' && up.starts_with("L-"));
            let misplaced = match field {
                CronField::DayOfMonth => false,
                CronField::DayOfWeek => c == 'W' && looks_special,
                _ => looks_special,
            };
            if misplaced {
                return Err(special(c));
            }
        }
        Ok(())
    }

    fn step(&self, field: CronField, item: &str, step: &str) -> Result<u32, CronError> {
        if !is_digits(step) {
            return Err(self.malformed(
                field,
                item,
                "the step after `/` must be a positive number",
            ));
        }
        let max = field.max_step();
        let value = step.parse::<u32>().unwrap_or(u32::MAX);
        if value == 0 || value > max {
            return Err(CronError::InvalidStep {
                expr: self.expr(),
                field,
                token: item.to_string(),
                step: value,
                max,
            });
        }
        Ok(value)
    }

    /// One plain value: a number or (month, day-of-week) a name.
    fn value(&self, field: CronField, item: &str, token: &str) -> Result<u32, CronError> {
        let (min, max) = field.bounds();
        if token.is_empty() {
            return Err(self.malformed(field, item, "missing value"));
        }
        if is_digits(token) {
            let value = token
                .parse::<u32>()
                .map_err(|_| self.malformed(field, item, "number too large"))?;
            if value < min || value > max {
                return Err(CronError::ValueOutOfRange {
                    expr: self.expr(),
                    field,
                    value,
                    min,
                    max,
                });
            }
            return Ok(value);
        }
        match field.names() {
            Some((names, allowed)) => {
                let up = token.to_ascii_uppercase();
                match names.iter().position(|n| *n == up) {
                    Some(i) => Ok(i as u32 + 1),
                    None => Err(CronError::UnknownName {
                        expr: self.expr(),
                        field,
                        token: token.to_string(),
                        allowed,
                    }),
                }
            }
            None => Err(self.malformed(
                field,
                item,
                format!("`{token}` is not a number {min}-{max}"),
            )),
        }
    }

    fn day_of_month(&self, raw: &str) -> Result<DayField<DomRule>, CronError> {
        const FIELD: CronField = CronField::DayOfMonth;
        match raw {
            "?" => return Ok(DayField::Question),
            "*" => return Ok(DayField::Star),
            _ => {}
        }
        let is_special = |item: &str| {
            let up = item.to_ascii_uppercase();
            up.contains('L') || up.contains('W') || up.contains('?')
        };
        if raw.contains(',') {
            if let Some(item) = raw.split(',').find(|i| is_special(i)) {
                return Err(self.not_alone(FIELD, item));
            }
        } else if is_special(raw) && !raw.contains('?') {
            return self.day_of_month_special(raw).map(DayField::Spec);
        }
        Ok(DayField::Spec(DomRule::Days(bits(&self.list(FIELD, raw)?))))
    }

    /// `L`, `L-n`, `LW`, `L-nW`, `nW`.
    fn day_of_month_special(&self, raw: &str) -> Result<DomRule, CronError> {
        const FIELD: CronField = CronField::DayOfMonth;
        let up = raw.to_ascii_uppercase();
        if up == "L" {
            return Ok(DomRule::LastOffset(0));
        }
        if up == "LW" {
            return Ok(DomRule::LastOffsetWeekday(0));
        }
        if let Some(rest) = up.strip_prefix("L-") {
            let (number, weekday) = match rest.strip_suffix('W') {
                Some(number) => (number, true),
                None => (rest, false),
            };
            if !is_digits(number) {
                return Err(self.malformed(
                    FIELD,
                    raw,
                    "expected `L-n` or `L-nW` with n a number 0-30",
                ));
            }
            let offset = number.parse::<u32>().unwrap_or(u32::MAX);
            if offset > 30 {
                return Err(CronError::ModifierOutOfRange {
                    expr: self.expr(),
                    field: FIELD,
                    token: raw.to_string(),
                    what: "offset",
                    value: offset,
                    min: 0,
                    max: 30,
                });
            }
            return Ok(if weekday {
                DomRule::LastOffsetWeekday(offset)
            } else {
                DomRule::LastOffset(offset)
            });
        }
        if let Some(number) = up.strip_suffix('W') {
            if is_digits(number) {
                return self.value(FIELD, raw, number).map(DomRule::NearestWeekday);
            }
            return Err(self.malformed(
                FIELD,
                raw,
                "`W` must follow a single day number, e.g. `15W`, or `L` as in `LW` \
                 (no ranges, lists or steps)",
            ));
        }
        Err(self.malformed(
            FIELD,
            raw,
            "`L` in the day-of-month field must be written `L`, `L-n`, `LW` or `L-nW`",
        ))
    }

    fn day_of_week(&self, raw: &str) -> Result<DayField<DowRule>, CronError> {
        const FIELD: CronField = CronField::DayOfWeek;
        match raw {
            "?" => return Ok(DayField::Question),
            "*" => return Ok(DayField::Star),
            _ => {}
        }
        let is_special = |item: &str| {
            let up = item.to_ascii_uppercase();
            up.ends_with('L') || up.contains('#') || up.contains('?')
        };
        if raw.contains(',') {
            if let Some(item) = raw.split(',').find(|i| is_special(i)) {
                return Err(self.not_alone(FIELD, item));
            }
        } else if is_special(raw) && !raw.contains('?') {
            return self.day_of_week_special(raw).map(DayField::Spec);
        }
        Ok(DayField::Spec(DowRule::Days(bits(&self.list(FIELD, raw)?))))
    }

    /// `L`, `xL`, `x#k`.
    fn day_of_week_special(&self, raw: &str) -> Result<DowRule, CronError> {
        const FIELD: CronField = CronField::DayOfWeek;
        let single_weekday =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if raw.eq_ignore_ascii_case("L") {
            return Ok(DowRule::Days(1 << 7));
        }
        if let Some((weekday, nth)) = raw.split_once('#') {
            if !single_weekday(weekday) || !is_digits(nth) {
                return Err(self.malformed(
                    FIELD,
                    raw,
                    "expected `x#k` with x a single weekday and k 1-5, e.g. `6#3` (third Friday)",
                ));
            }
            let weekday = self.value(FIELD, raw, weekday)?;
            let nth = nth.parse::<u32>().unwrap_or(u32::MAX);
            if !(1..=5).contains(&nth) {
                return Err(CronError::ModifierOutOfRange {
                    expr: self.expr(),
                    field: FIELD,
                    token: raw.to_string(),
                    what: "occurrence",
                    value: nth,
                    min: 1,
                    max: 5,
                });
            }
            return Ok(DowRule::Nth(weekday, nth));
        }
        // Ends with `L` (checked by the caller); `L` is ASCII so this slices safely.
        let weekday = &raw[..raw.len() - 1];
        if !single_weekday(weekday) {
            return Err(self.malformed(
                FIELD,
                raw,
                "`L` must stand alone or follow a single weekday, e.g. `6L` (last Friday)",
            ));
        }
        self.value(FIELD, raw, weekday).map(DowRule::Last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDateTime};

    fn utc(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("bad test instant {s}: {e}"))
            .and_utc()
    }

    fn cron(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next `n` fire times after `after`, stopping at the first None.
    fn fires(expr: &str, after: &str, n: usize) -> Vec<String> {
        let schedule = cron(expr);
        let mut t = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            match schedule.next_after(t) {
                Some(next) => {
                    assert!(next > t, "{expr}: {next} not after {t}");
                    assert!(schedule.matches(next), "{expr}: {next} does not match");
                    out.push(next.format("%Y-%m-%dT%H:%M:%S").to_string());
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    fn check_table(cases: &[(&str, &str, &[&str])]) {
        for (expr, after, expected) in cases {
            let got = fires(expr, after, expected.len());
            assert_eq!(got, *expected, "{expr} after {after}");
        }
    }

    #[test]
    fn quartz_documentation_examples() {
        check_table(&[
            // Fire at 12pm (noon) every day.
            (
                "0 0 12 * * ?",
                "2024-03-10T11:59:59",
                &[
                    "2024-03-10T12:00:00",
                    "2024-03-11T12:00:00",
                    "2024-03-12T12:00:00",
                ],
            ),
            // Fire at 10:15am every day.
            (
                "0 15 10 ? * *",
                "2024-12-31T10:15:00",
                &["2025-01-01T10:15:00", "2025-01-02T10:15:00"],
            ),
            (
                "0 15 10 * * ?",
                "2024-12-31T10:14:59",
                &["2024-12-31T10:15:00", "2025-01-01T10:15:00"],
            ),
            (
                "0 15 10 * * ? *",
                "2024-12-31T10:14:59",
                &["2024-12-31T10:15:00", "2025-01-01T10:15:00"],
            ),
            // Fire at 10:15am every day during the year 2005.
            (
                "0 15 10 * * ? 2005",
                "2004-12-31T12:00:00",
                &["2005-01-01T10:15:00", "2005-01-02T10:15:00"],
            ),
            (
                "0 15 10 * * ? 2005",
                "2005-12-30T10:15:00",
                &["2005-12-31T10:15:00"],
            ),
            // Every minute starting at 2pm and ending at 2:59pm, every day.
            (
                "0 * 14 * * ?",
                "2024-05-01T13:59:30",
                &["2024-05-01T14:00:00", "2024-05-01T14:01:00"],
            ),
            (
                "0 * 14 * * ?",
                "2024-05-01T14:59:00",
                &["2024-05-02T14:00:00"],
            ),
            // Every 5 minutes starting at 2pm and ending at 2:55pm, every day.
            (
                "0 0/5 14 * * ?",
                "2024-05-01T14:52:10",
                &[
                    "2024-05-01T14:55:00",
                    "2024-05-02T14:00:00",
                    "2024-05-02T14:05:00",
                ],
            ),
            // Every 5 minutes 2pm-2:55pm and 6pm-6:55pm, every day.
            (
                "0 0/5 14,18 * * ?",
                "2024-05-01T14:55:00",
                &["2024-05-01T18:00:00", "2024-05-01T18:05:00"],
            ),
            (
                "0 0/5 14,18 * * ?",
                "2024-05-01T18:55:00",
                &["2024-05-02T14:00:00"],
            ),
            // Every minute 2pm-2:05pm, every day.
            (
                "0 0-5 14 * * ?",
                "2024-05-01T14:04:59",
                &["2024-05-01T14:05:00", "2024-05-02T14:00:00"],
            ),
            // 2:10pm and 2:44pm every Wednesday in March.
            (
                "0 10,44 14 ? 3 WED",
                "2024-01-01T00:00:00",
                &[
                    "2024-03-06T14:10:00",
                    "2024-03-06T14:44:00",
                    "2024-03-13T14:10:00",
                ],
            ),
            (
                "0 10,44 14 ? 3 WED",
                "2024-03-27T14:44:00",
                &["2025-03-05T14:10:00"],
            ),
            // 10:15am Monday to Friday (2024-05-03 is a Friday).
            (
                "0 15 10 ? * MON-FRI",
                "2024-05-03T10:15:00",
                &["2024-05-06T10:15:00", "2024-05-07T10:15:00"],
            ),
            // 10:15am on the 15th day of every month.
            (
                "0 15 10 15 * ?",
                "2024-01-15T10:15:00",
                &["2024-02-15T10:15:00", "2024-03-15T10:15:00"],
            ),
            // 10:15am on the last day of every month.
            (
                "0 15 10 L * ?",
                "2024-01-31T10:15:00",
                &[
                    "2024-02-29T10:15:00",
                    "2024-03-31T10:15:00",
                    "2024-04-30T10:15:00",
                ],
            ),
            (
                "0 15 10 L * ?",
                "2023-02-01T00:00:00",
                &["2023-02-28T10:15:00"],
            ),
            // 10:15am on the 2nd-to-last day of every month (last day - 2).
            (
                "0 15 10 L-2 * ?",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-29T10:15:00",
                    "2024-02-27T10:15:00",
                    "2024-03-29T10:15:00",
                    "2024-04-28T10:15:00",
                ],
            ),
            // 10:15am on the last Friday of every month.
            (
                "0 15 10 ? * 6L",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-26T10:15:00",
                    "2024-02-23T10:15:00",
                    "2024-03-29T10:15:00",
                ],
            ),
            // ... during the years 2002-2005.
            (
                "0 15 10 ? * 6L 2002-2005",
                "2001-06-01T00:00:00",
                &[
                    "2002-01-25T10:15:00",
                    "2002-02-22T10:15:00",
                    "2002-03-29T10:15:00",
                ],
            ),
            (
                "0 15 10 ? * 6L 2002-2005",
                "2005-12-01T00:00:00",
                &["2005-12-30T10:15:00"],
            ),
            // 10:15am on the third Friday of every month.
            (
                "0 15 10 ? * 6#3",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-19T10:15:00",
                    "2024-02-16T10:15:00",
                    "2024-03-15T10:15:00",
                ],
            ),
            // 12pm every 5 days every month, starting on the first day of the month.
            (
                "0 0 12 1/5 * ?",
                "2024-01-26T12:00:00",
                &[
                    "2024-01-31T12:00:00",
                    "2024-02-01T12:00:00",
                    "2024-02-06T12:00:00",
                ],
            ),
            (
                "0 0 12 1/5 * ?",
                "2024-02-26T12:00:00",
                &["2024-03-01T12:00:00"],
            ),
            // Every November 11th at 11:11am.
            (
                "0 11 11 11 11 ?",
                "2024-11-11T11:11:00",
                &["2025-11-11T11:11:00", "2026-11-11T11:11:00"],
            ),
        ]);
    }

    #[test]
    fn nearest_weekday_and_last_weekday() {
        check_table(&[
            // 2024-06-15 is a Saturday: the Friday before.
            (
                "0 0 0 15W * ?",
                "2024-06-01T00:00:00",
                &["2024-06-14T00:00:00"],
            ),
            // 2024-09-15 is a Sunday: the Monday after.
            (
                "0 0 0 15W * ?",
                "2024-09-01T00:00:00",
                &["2024-09-16T00:00:00"],
            ),
            // A weekday is itself (2024-05-15 is a Wednesday).
            (
                "0 0 0 15W * ?",
                "2024-05-01T00:00:00",
                &["2024-05-15T00:00:00"],
            ),
            // 2024-06-01 is a Saturday: Monday the 3rd, not May 31st.
            (
                "0 0 0 1W * ?",
                "2024-05-31T00:00:00",
                &["2024-06-03T00:00:00"],
            ),
            // 2024-09-01 is a Sunday: Monday the 2nd.
            (
                "0 0 0 1W * ?",
                "2024-08-31T12:00:00",
                &["2024-09-02T00:00:00"],
            ),
            // 2024-03-31 is a Sunday: Friday the 29th, not April 1st;
            // April has no 31st, so it does not fire in April.
            (
                "0 0 0 31W * ?",
                "2024-03-01T00:00:00",
                &["2024-03-29T00:00:00", "2024-05-31T00:00:00"],
            ),
            // Last weekday: 03-31 Sun, 04-30 Tue, 05-31 Fri, 06-30 Sun,
            // 07-31 Wed, 08-31 Sat.
            (
                "0 0 0 LW * ?",
                "2024-03-01T00:00:00",
                &[
                    "2024-03-29T00:00:00",
                    "2024-04-30T00:00:00",
                    "2024-05-31T00:00:00",
                    "2024-06-28T00:00:00",
                    "2024-07-31T00:00:00",
                    "2024-08-30T00:00:00",
                ],
            ),
            // L-1W: nearest weekday to the day before the last day.
            // 2024-06-29 is a Saturday -> 28th; 2024-07-30 is a Tuesday.
            (
                "0 0 0 L-1W * ?",
                "2024-06-01T00:00:00",
                &["2024-06-28T00:00:00", "2024-07-30T00:00:00"],
            ),
        ]);
    }

    #[test]
    fn day_of_week_specials() {
        check_table(&[
            // `L` alone in day-of-week is Saturday.
            (
                "0 0 0 ? * L",
                "2024-01-01T00:00:00",
                &["2024-01-06T00:00:00", "2024-01-13T00:00:00"],
            ),
            // Fifth Monday: only months that have one.
            (
                "0 0 0 ? * 2#5",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-29T00:00:00",
                    "2024-04-29T00:00:00",
                    "2024-07-29T00:00:00",
                    "2024-09-30T00:00:00",
                    "2024-12-30T00:00:00",
                ],
            ),
            // Fifth Sunday of February: leap years whose February starts on a Sunday.
            (
                "0 0 0 ? FEB 1#5",
                "2004-03-01T00:00:00",
                &["2032-02-29T00:00:00", "2060-02-29T00:00:00"],
            ),
            // Names work with `L` and `#`.
            (
                "0 0 0 ? * FRIL",
                "2024-01-01T00:00:00",
                &["2024-01-26T00:00:00"],
            ),
            (
                "0 0 0 ? * FRI#3",
                "2024-01-01T00:00:00",
                &["2024-01-19T00:00:00"],
            ),
            // Last Sunday (weekday 1) when the month ends on a Sunday.
            (
                "0 0 0 ? * 1L",
                "2024-03-01T00:00:00",
                &["2024-03-31T00:00:00"],
            ),
            // Last Saturday when the month ends on a Sunday.
            (
                "0 0 0 ? * 7L",
                "2024-03-01T00:00:00",
                &["2024-03-30T00:00:00"],
            ),
            // Day-of-week steps: 2/2 = MON, WED, FRI.
            (
                "0 0 0 ? * 2/2",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-03T00:00:00",
                    "2024-01-05T00:00:00",
                    "2024-01-08T00:00:00",
                ],
            ),
        ]);
    }

    #[test]
    fn seconds_are_honoured() {
        check_table(&[
            (
                "*/10 * * * * ?",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-01T00:00:10",
                    "2024-01-01T00:00:20",
                    "2024-01-01T00:00:30",
                ],
            ),
            (
                "*/10 * * * * ?",
                "2024-12-31T23:59:55",
                &["2025-01-01T00:00:00"],
            ),
            (
                "1 * * * * ?",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-01T00:00:01",
                    "2024-01-01T00:01:01",
                    "2024-01-01T00:02:01",
                ],
            ),
            (
                "1 * * * * ?",
                "2024-01-01T00:00:01",
                &["2024-01-01T00:01:01"],
            ),
            // Sub-second parts of `after` are ignored, the result is strictly later.
            (
                "1 * * * * ?",
                "2024-01-01T00:00:00.999",
                &["2024-01-01T00:00:01"],
            ),
            (
                "1 * * * * ?",
                "2024-01-01T00:00:01.500",
                &["2024-01-01T00:01:01"],
            ),
            (
                "* * * * * ?",
                "2024-01-01T00:00:00.250",
                &["2024-01-01T00:00:01"],
            ),
            (
                // 5/20 = seconds 5, 25, 45.
                "5/20 * * * * ?",
                "2024-01-01T00:00:44",
                &["2024-01-01T00:00:45", "2024-01-01T00:01:05"],
            ),
            (
                "15-17 30 * * * ?",
                "2024-01-01T00:30:16",
                &["2024-01-01T00:30:17", "2024-01-01T01:30:15"],
            ),
        ]);
    }

    #[test]
    fn rollovers_and_leap_years() {
        check_table(&[
            (
                "59 59 23 31 12 ?",
                "2024-06-01T00:00:00",
                &["2024-12-31T23:59:59", "2025-12-31T23:59:59"],
            ),
            (
                "0 0 0 1 1 ?",
                "2024-12-31T23:59:59",
                &["2025-01-01T00:00:00", "2026-01-01T00:00:00"],
            ),
            (
                "0 0 0 * * ?",
                "2024-02-28T00:00:00",
                &["2024-02-29T00:00:00", "2024-03-01T00:00:00"],
            ),
            (
                "0 0 0 * * ?",
                "2023-02-28T00:00:00",
                &["2023-03-01T00:00:00"],
            ),
            (
                "0 0 0 31 * ?",
                "2024-01-31T00:00:00",
                &["2024-03-31T00:00:00", "2024-05-31T00:00:00"],
            ),
            // Feb 29th: leap years only, and 2100 is not one.
            (
                "0 0 0 29 2 ?",
                "2024-03-01T00:00:00",
                &["2028-02-29T00:00:00"],
            ),
            (
                "0 0 0 29 2 ?",
                "2096-03-01T00:00:00",
                &["2104-02-29T00:00:00"],
            ),
            (
                "0 0 0 29 2 ?",
                "1999-01-01T00:00:00",
                &["2000-02-29T00:00:00"],
            ),
            (
                "0 0 0 L 2 ?",
                "2100-01-01T00:00:00",
                &["2100-02-28T00:00:00"],
            ),
            // Before 1970 the search starts at 1970.
            (
                "0 0 0 * * ?",
                "1900-01-01T00:00:00",
                &["1970-01-01T00:00:00"],
            ),
            (
                "0 0 0 1 1 ? 2030/5",
                "2024-01-01T00:00:00",
                &["2030-01-01T00:00:00", "2035-01-01T00:00:00"],
            ),
            (
                "0 0 0 1 1 ? 2198,2199",
                "2197-06-01T00:00:00",
                &["2198-01-01T00:00:00", "2199-01-01T00:00:00"],
            ),
        ]);
    }

    #[test]
    fn wrap_around_ranges() {
        check_table(&[
            (
                "0 0 22-2 * * ?",
                "2024-01-01T02:00:00",
                &[
                    "2024-01-01T22:00:00",
                    "2024-01-01T23:00:00",
                    "2024-01-02T00:00:00",
                    "2024-01-02T01:00:00",
                    "2024-01-02T02:00:00",
                    "2024-01-02T22:00:00",
                ],
            ),
            (
                "0 0 22-2/2 * * ?",
                "2024-01-01T12:00:00",
                &[
                    "2024-01-01T22:00:00",
                    "2024-01-02T00:00:00",
                    "2024-01-02T02:00:00",
                ],
            ),
            // 2024-01-01 is a Monday.
            (
                "0 0 0 ? * FRI-MON",
                "2024-01-01T00:00:00",
                &[
                    "2024-01-05T00:00:00",
                    "2024-01-06T00:00:00",
                    "2024-01-07T00:00:00",
                    "2024-01-08T00:00:00",
                    "2024-01-12T00:00:00",
                ],
            ),
            (
                "0 0 0 1 NOV-FEB ?",
                "2024-02-01T00:00:00",
                &[
                    "2024-11-01T00:00:00",
                    "2024-12-01T00:00:00",
                    "2025-01-01T00:00:00",
                    "2025-02-01T00:00:00",
                ],
            ),
            (
                "0 0 0 30-2 * ?",
                "2024-02-01T00:00:00",
                &[
                    "2024-02-02T00:00:00",
                    "2024-03-01T00:00:00",
                    "2024-03-02T00:00:00",
                    "2024-03-30T00:00:00",
                ],
            ),
            (
                "58-1 * * * * ?",
                "2024-01-01T00:00:59",
                &[
                    "2024-01-01T00:01:00",
                    "2024-01-01T00:01:01",
                    "2024-01-01T00:01:58",
                ],
            ),
        ]);
    }

    #[test]
    fn star_in_day_fields() {
        // Both `*`: every day (non-strict form used by Kibana and users).
        check_table(&[
            (
                "0 0 0 * * *",
                "2024-01-01T00:00:00",
                &["2024-01-02T00:00:00", "2024-01-03T00:00:00"],
            ),
            (
                "0 0 0 ? * *",
                "2024-01-01T00:00:00",
                &["2024-01-02T00:00:00"],
            ),
            (
                "0 0 0 * * ?",
                "2024-01-01T00:00:00",
                &["2024-01-02T00:00:00"],
            ),
            // `*` next to a constraint reads as `?`.
            (
                "0 0 0 * * MON",
                "2024-01-01T00:00:00",
                &["2024-01-08T00:00:00"],
            ),
            (
                "0 0 0 15 * *",
                "2024-01-01T00:00:00",
                &["2024-01-15T00:00:00"],
            ),
            (
                "0 0 0 L * *",
                "2024-01-01T00:00:00",
                &["2024-01-31T00:00:00"],
            ),
        ]);
        assert_eq!(
            cron("0 0 0 * * *").days,
            cron("0 0 0 ? * *").days,
            "both mean every day"
        );
    }

    #[test]
    fn no_fire_time_left() {
        let none = |expr: &str, after: &str| {
            assert_eq!(
                cron(expr).next_after(utc(after)),
                None,
                "{expr} after {after}"
            );
        };
        none("0 0 0 30 2 ?", "2024-01-01T00:00:00");
        none("0 0 0 31 4,6,9,11 ?", "2024-01-01T00:00:00");
        none("0 0 0 * * ? 2020", "2024-01-01T00:00:00");
        none("0 15 10 * * ? 2005", "2005-12-31T10:15:00");
        none("0 15 10 ? * 6L 2002-2005", "2005-12-30T10:15:00");
        none("0 0 0 * * ? 2199", "2199-12-31T00:00:00");
        none("* * * * * ?", "2199-12-31T23:59:59");
        none("* * * * * ?", "2300-01-01T00:00:00");
        none("0 0 0 ? FEB 1#5", "2184-03-01T00:00:00");
        assert_eq!(
            cron("0 0 0 * * ? 2199").next_after(utc("2199-12-30T12:00:00")),
            Some(utc("2199-12-31T00:00:00"))
        );
        // The far end of chrono's range does not panic.
        assert_eq!(
            cron("* * * * * ?").next_after(DateTime::<Utc>::MAX_UTC),
            None
        );
        assert_eq!(
            cron("* * * * * ?").next_after(DateTime::<Utc>::MIN_UTC),
            Some(utc("1970-01-01T00:00:00"))
        );
    }

    #[test]
    fn strictly_after() {
        for expr in [
            "0 0 12 * * ?",
            "*/10 * * * * ?",
            "0 15 10 ? * 6L",
            "0 0 0 LW * ?",
            "0 11 11 11 11 ?",
        ] {
            let schedule = cron(expr);
            let first = schedule
                .next_after(utc("2024-01-01T00:00:00"))
                .expect("fires");
            let second = schedule.next_after(first).expect("fires again");
            assert!(second > first, "{expr}");
            assert_eq!(
                schedule.next_after(first - Duration::seconds(1)),
                Some(first),
                "{expr}"
            );
            assert_eq!(
                schedule.next_after(first - Duration::milliseconds(1)),
                Some(first),
                "{expr}"
            );
            assert_eq!(
                schedule.next_after(first + Duration::milliseconds(999)),
                Some(second),
                "{expr}"
            );
        }
    }

    #[test]
    fn names_and_letters_are_case_insensitive() {
        let pairs = [
            ("0 15 10 ? jan,Feb mon-fri", "0 15 10 ? 1,2 2-6"),
            ("0 15 10 ? * fri#3", "0 15 10 ? * 6#3"),
            ("0 15 10 ? * friL", "0 15 10 ? * 6L"),
            ("0 15 10 ? * fRiL", "0 15 10 ? * 6l"),
            ("0 0 0 lw * ?", "0 0 0 LW * ?"),
            ("0 0 0 l-2 * ?", "0 0 0 L-2 * ?"),
            ("0 0 0 15w * ?", "0 0 0 15W * ?"),
            ("0 0 0 ? * l", "0 0 0 ? * 7"),
            ("0 0 0 ? Nov-feb sun", "0 0 0 ? 11-2 1"),
            ("0 0 0 ? * SUN-SAT", "0 0 0 ? * 1-7"),
        ];
        for (a, b) in pairs {
            let (sa, sb) = (cron(a), cron(b));
            assert_eq!(sa.days, sb.days, "{a} vs {b}");
            assert_eq!(sa.months, sb.months, "{a} vs {b}");
            assert_eq!(
                fires(a, "2024-01-01T00:00:00", 5),
                fires(b, "2024-01-01T00:00:00", 5),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn parse_accessors_and_traits() {
        let schedule: CronSchedule = "  0 0 0 * * ?  ".parse().expect("valid");
        assert_eq!(schedule.as_str(), "0 0 0 * * ?");
        assert_eq!(schedule.to_string(), "0 0 0 * * ?");
        assert_eq!(schedule, cron(schedule.as_str()));
        assert_eq!(schedule.clone(), schedule);
        // Any whitespace separates fields.
        assert_eq!(
            cron("0\t0  0\n* * ?").next_after(utc("2024-01-01T00:00:00")),
            Some(utc("2024-01-02T00:00:00"))
        );
        assert_eq!(
            "0 61 * * * ?".parse::<CronSchedule>(),
            CronSchedule::parse("0 61 * * * ?")
        );
        // Value lists: duplicates and any order.
        assert_eq!(
            cron("5,1,5 * * * * ?").seconds,
            cron("1,5 * * * * ?").seconds
        );
        assert!(cron("0 0 12 * * ?").matches(utc("2024-07-01T12:00:00.5")));
        assert!(!cron("0 0 12 * * ?").matches(utc("2024-07-01T12:00:01")));
        assert!(!cron("* * * * * ?").matches(utc("1969-12-31T23:59:59")));
    }

    #[test]
    fn error_messages() {
        // (expression, message after the common "invalid cron expression `<expr>`: " prefix)
        let cases: &[(&str, &str)] = &[
            ("", "expected 6 or 7 whitespace-separated fields (seconds minutes hours day-of-month month day-of-week [year]), found 0"),
            ("* * * * *", "expected 6 or 7 whitespace-separated fields (seconds minutes hours day-of-month month day-of-week [year]), found 5"),
            ("* * * * * ? * *", "expected 6 or 7 whitespace-separated fields (seconds minutes hours day-of-month month day-of-week [year]), found 8"),
            ("0 61 * * * ?", "minutes field value 61 out of range 0-59"),
            ("60 * * * * ?", "seconds field value 60 out of range 0-59"),
            ("0 0 24 * * ?", "hours field value 24 out of range 0-23"),
            ("0 0 0 0 * ?", "day-of-month field value 0 out of range 1-31"),
            ("0 0 0 32 * ?", "day-of-month field value 32 out of range 1-31"),
            ("0 0 0 ? 13 *", "month field value 13 out of range 1-12"),
            ("0 0 0 ? 0 *", "month field value 0 out of range 1-12"),
            ("0 0 0 ? * 8", "day-of-week field value 8 out of range 1-7"),
            ("0 0 0 ? * 0", "day-of-week field value 0 out of range 1-7"),
            ("0 0 0 ? * 9L", "day-of-week field value 9 out of range 1-7"),
            ("0 0 0 ? * 8#1", "day-of-week field value 8 out of range 1-7"),
            ("0 0 0 32W * ?", "day-of-month field value 32 out of range 1-31"),
            ("0 0 0 * * ? 1969", "year field value 1969 out of range 1970-2199"),
            ("0 0 0 * * ? 2200", "year field value 2200 out of range 1970-2199"),
            ("0 0 5-25 * * ?", "hours field value 25 out of range 0-23"),
            ("*/0 * * * * ?", "seconds field step 0 in `*/0` out of range 1-59"),
            ("0/60 * * * * ?", "seconds field step 60 in `0/60` out of range 1-59"),
            ("0 0 1-5/24 * * ?", "hours field step 24 in `1-5/24` out of range 1-23"),
            ("0 0 0 ? */13 *", "month field step 13 in `*/13` out of range 1-12"),
            ("0 0 0 1 1 ? 2020/230", "year field step 230 in `2020/230` out of range 1-229"),
            ("0 0 0 ? FOO *", "month field has unknown name `FOO` (allowed: numbers or JAN-DEC)"),
            ("0 0 0 ? January *", "month field has unknown name `January` (allowed: numbers or JAN-DEC)"),
            ("0 0 0 ? * fun", "day-of-week field has unknown name `fun` (allowed: numbers or SUN-SAT)"),
            ("0 0 0 ? * MON-XYZ", "day-of-week field has unknown name `XYZ` (allowed: numbers or SUN-SAT)"),
            ("0 0 0 ? * XYZ#2", "day-of-week field has unknown name `XYZ` (allowed: numbers or SUN-SAT)"),
            ("a * * * * ?", "seconds field has malformed token `a`: `a` is not a number 0-59"),
            ("0 0 MON * * ?", "hours field has malformed token `MON`: `MON` is not a number 0-23"),
            ("1- * * * * ?", "seconds field has malformed token `1-`: missing value"),
            ("-1 * * * * ?", "seconds field has malformed token `-1`: missing value"),
            ("1-2-3 * * * * ?", "seconds field has malformed token `1-2-3`: `2-3` is not a number 0-59"),
            ("1,,2 * * * * ?", "seconds field has malformed token `1,,2`: empty list element"),
            ("1, * * * * ?", "seconds field has malformed token `1,`: empty list element"),
            ("/5 * * * * ?", "seconds field has malformed token `/5`: missing value before `/`"),
            ("5/ * * * * ?", "seconds field has malformed token `5/`: the step after `/` must be a positive number"),
            ("5/x * * * * ?", "seconds field has malformed token `5/x`: the step after `/` must be a positive number"),
            ("5/2/2 * * * * ?", "seconds field has malformed token `5/2/2`: the step after `/` must be a positive number"),
            ("0 0 0 ? * MON/x", "day-of-week field has malformed token `MON/x`: the step after `/` must be a positive number"),
            ("99999999999 * * * * ?", "seconds field has malformed token `99999999999`: number too large"),
            ("0 0 0 * * ? 2010-2005", "year field has malformed token `2010-2005`: year ranges must be ascending (they cannot wrap around)"),
            ("? * * * * ?", "`?` is not allowed in the seconds field (only in the day-of-month or day-of-week field)"),
            ("0 0 0 ? ? *", "`?` is not allowed in the month field (only in the day-of-month or day-of-week field)"),
            ("0 0 0 * * ? ?", "`?` is not allowed in the year field (only in the day-of-month or day-of-week field)"),
            ("0 0 0 ?/2 * ?", "day-of-month field has malformed token `?/2`: `?` must be the whole field"),
            ("0 0 0 ? * ?", "`?` can only be specified for the day-of-month or the day-of-week field, not both"),
            ("0 0 0 15 * MON", "support for specifying both a day-of-week and a day-of-month parameter is not implemented; put `?` in one of them"),
            ("0 0 0 L * 6#3", "support for specifying both a day-of-week and a day-of-month parameter is not implemented; put `?` in one of them"),
            ("0 0 0 1-31 * 1-7", "support for specifying both a day-of-week and a day-of-month parameter is not implemented; put `?` in one of them"),
            ("5L * * * * ?", "`L` is not allowed in the seconds field (found in `5L`; it is only allowed in the day-of-month and day-of-week fields)"),
            ("0 L * * * ?", "`L` is not allowed in the minutes field (found in `L`; it is only allowed in the day-of-month and day-of-week fields)"),
            ("0 0 0 ? L *", "`L` is not allowed in the month field (found in `L`; it is only allowed in the day-of-month and day-of-week fields)"),
            ("0 0 0 ? julL *", "`L` is not allowed in the month field (found in `julL`; it is only allowed in the day-of-month and day-of-week fields)"),
            ("0 0 1W * * ?", "`W` is not allowed in the hours field (found in `1W`; it is only allowed in the day-of-month field)"),
            ("0 0 0 ? 5W *", "`W` is not allowed in the month field (found in `5W`; it is only allowed in the day-of-month field)"),
            ("0 0 0 ? * 15W", "`W` is not allowed in the day-of-week field (found in `15W`; it is only allowed in the day-of-month field)"),
            ("0 0 0 1#2 * ?", "`#` is not allowed in the day-of-month field (found in `1#2`; it is only allowed in the day-of-week field)"),
            ("0 0 0 * * ? 2020#1", "`#` is not allowed in the year field (found in `2020#1`; it is only allowed in the day-of-week field)"),
            ("0 0 0 L,15 * ?", "`L` must be the only value in the day-of-month field (no lists)"),
            ("0 0 0 1,15W * ?", "`15W` must be the only value in the day-of-month field (no lists)"),
            ("0 0 0 ?,5 * ?", "`?` must be the only value in the day-of-month field (no lists)"),
            ("0 0 0 ? * 6#3,2", "`6#3` must be the only value in the day-of-week field (no lists)"),
            ("0 0 0 ? * MON,L", "`L` must be the only value in the day-of-week field (no lists)"),
            ("0 0 0 ? * 6#6", "day-of-week field occurrence 6 in `6#6` out of range 1-5"),
            ("0 0 0 ? * 6#0", "day-of-week field occurrence 0 in `6#0` out of range 1-5"),
            ("0 0 0 L-31 * ?", "day-of-month field offset 31 in `L-31` out of range 0-30"),
            ("0 0 0 L-x * ?", "day-of-month field has malformed token `L-x`: expected `L-n` or `L-nW` with n a number 0-30"),
            ("0 0 0 L- * ?", "day-of-month field has malformed token `L-`: expected `L-n` or `L-nW` with n a number 0-30"),
            ("0 0 0 1-5W * ?", "day-of-month field has malformed token `1-5W`: `W` must follow a single day number, e.g. `15W`, or `L` as in `LW` (no ranges, lists or steps)"),
            ("0 0 0 W * ?", "day-of-month field has malformed token `W`: `W` must follow a single day number, e.g. `15W`, or `L` as in `LW` (no ranges, lists or steps)"),
            ("0 0 0 5L * ?", "day-of-month field has malformed token `5L`: `L` in the day-of-month field must be written `L`, `L-n`, `LW` or `L-nW`"),
            ("0 0 0 ? * 6#x", "day-of-week field has malformed token `6#x`: expected `x#k` with x a single weekday and k 1-5, e.g. `6#3` (third Friday)"),
            ("0 0 0 ? * #3", "day-of-week field has malformed token `#3`: expected `x#k` with x a single weekday and k 1-5, e.g. `6#3` (third Friday)"),
            ("0 0 0 ? * MON-FRIL", "day-of-week field has malformed token `MON-FRIL`: `L` must stand alone or follow a single weekday, e.g. `6L` (last Friday)"),
            ("0 0 0 ? * é", "day-of-week field has unknown name `é` (allowed: numbers or SUN-SAT)"),
        ];
        for (expr, message) in cases {
            match CronSchedule::parse(expr) {
                Ok(s) => panic!("{expr} parsed as {s:?}"),
                Err(e) => assert_eq!(
                    e.to_string(),
                    format!("invalid cron expression `{}`: {message}", expr.trim()),
                    "{expr}"
                ),
            }
        }
        assert_eq!(
            CronSchedule::parse(" 0 61 * * * ? ").map_err(|e| e.to_string()),
            Err(
                "invalid cron expression `0 61 * * * ?`: minutes field value 61 out of range 0-59"
                    .to_string()
            )
        );
        // Structured fields are available to callers.
        assert_eq!(
            CronSchedule::parse("0 61 * * * ?"),
            Err(CronError::ValueOutOfRange {
                expr: "0 61 * * * ?".into(),
                field: CronField::Minutes,
                value: 61,
                min: 0,
                max: 59,
            })
        );
        assert_eq!(
            "0 0 0 ? * ?".parse::<CronSchedule>(),
            Err(CronError::BothDaysUnspecified {
                expr: "0 0 0 ? * ?".into()
            })
        );
    }

    // ---- property-style tests -------------------------------------------

    /// xorshift64*: deterministic pseudo-random numbers without extra crates.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }

        /// An instant between 1969 and 2210, biased towards interesting
        /// boundaries (ends of minutes, days, months and years).
        fn instant(&mut self) -> DateTime<Utc> {
            let lo = utc("1969-06-01T00:00:00").timestamp();
            let hi = utc("2210-01-01T00:00:00").timestamp();
            let base = lo + self.below((hi - lo) as u64) as i64;
            let base = DateTime::from_timestamp(base, 0).expect("in range");
            let nanos = Duration::nanoseconds(self.below(1_000_000_000) as i64);
            match self.below(5) {
                0 => base + nanos,
                1 => base.with_second(59).expect("valid"),
                2 => base
                    .date_naive()
                    .and_hms_opt(23, 59, 59)
                    .expect("valid")
                    .and_utc(),
                3 => {
                    let d = base.date_naive();
                    let last = days_in_month(d.year(), d.month());
                    d.with_day(last)
                        .expect("valid")
                        .and_hms_opt(23, 59, 58)
                        .expect("valid")
                        .and_utc()
                }
                _ => {
                    // Near the 2020s, where real schedules live.
                    let lo = utc("2023-01-01T00:00:00").timestamp();
                    DateTime::from_timestamp(lo + self.below(5 * 366 * 86_400) as i64, 0)
                        .expect("in range")
                        + nanos
                }
            }
        }
    }

    /// Reference search: walks days one by one and, on a day that matches,
    /// scans its hours, minutes and seconds in order using the field
    /// predicates. Gives up after `max_days` days.
    fn brute_next(
        schedule: &CronSchedule,
        after: DateTime<Utc>,
        max_days: i64,
    ) -> Option<DateTime<Utc>> {
        let start = DateTime::from_timestamp(after.timestamp() + 1, 0)?;
        let mut date = start.date_naive();
        for _ in 0..max_days {
            if schedule.matches_date(date) {
                for h in 0..24 {
                    if !has_bit(schedule.hours, h) {
                        continue;
                    }
                    for m in 0..60 {
                        if !has_bit(schedule.minutes, m) {
                            continue;
                        }
                        for s in 0..60 {
                            let t = date.and_hms_opt(h, m, s)?.and_utc();
                            if t >= start && schedule.matches(t) {
                                return Some(t);
                            }
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    #[test]
    fn property_next_after_agrees_with_brute_force() {
        let exprs = [
            "* * * * * ?",
            "*/10 * * * * ?",
            "1 * * * * ?",
            "15,45 */7 * * * ?",
            "0 0/5 14,18 * * ?",
            "0-5 58-2 22-1 * * ?",
            "30 0 0 * * *",
            "0 0 12 ? * MON-FRI",
            "0 0 0 ? * FRI-MON",
            "0 10,44 14 ? 3 WED",
            "0 15 10 L * ?",
            "0 15 10 L-2 * ?",
            "0 15 10 L-30 * ?",
            "0 0 0 15W * ?",
            "0 0 0 1W * ?",
            "0 0 0 31W * ?",
            "0 0 0 LW * ?",
            "0 0 0 L-3W * ?",
            "0 15 10 ? * 6L",
            "0 15 10 ? * 1L",
            "0 15 10 ? * 6#3",
            "0 15 10 ? * 2#5",
            "0 0 12 1/5 * ?",
            "0 0 0 29 2 ?",
            "0 0 0 28-3 NOV-FEB ?",
            "0 0 0 ? * L 2000-2030",
            "0 15 10 ? * 6L 2002-2005",
            "0 0 0 30 2 ?",
            "0 0 0 * * ? 2199",
        ];
        let mut rng = Rng(0x5EED_CAFE_F00D_1234);
        let max_days = 3 * 366;
        for expr in exprs {
            let schedule = cron(expr);
            for _ in 0..150 {
                let t = rng.instant();
                let next = schedule.next_after(t);
                if let Some(n) = next {
                    assert!(n > t, "{expr}: {n} not after {t}");
                    assert!(schedule.matches(n), "{expr}: {n} does not match");
                    assert_eq!(n.timestamp_subsec_nanos(), 0, "{expr}: {n}");
                }
                let brute = brute_next(&schedule, t, max_days);
                match (next, brute) {
                    (Some(n), Some(b)) => assert_eq!(n, b, "{expr} after {t}"),
                    (None, None) => {}
                    (Some(n), None) => assert!(
                        n.date_naive() >= t.date_naive() + Duration::days(max_days - 1),
                        "{expr} after {t}: {n} missed by brute force"
                    ),
                    (None, Some(b)) => panic!("{expr} after {t}: missed {b}"),
                }
            }
        }
    }

    /// Day masks (used by the search) agree with the date predicate for
    /// every day rule over a whole Gregorian-ish span, including 1970-2199
    /// boundary years.
    #[test]
    fn property_day_mask_agrees_with_predicate() {
        let exprs = [
            "0 0 0 * * ?",
            "0 0 0 1,15,31 * ?",
            "0 0 0 L * ?",
            "0 0 0 L-5 * ?",
            "0 0 0 L-29 * ?",
            "0 0 0 L-30 * ?",
            "0 0 0 1W * ?",
            "0 0 0 2W * ?",
            "0 0 0 15W * ?",
            "0 0 0 29W * ?",
            "0 0 0 30W * ?",
            "0 0 0 31W * ?",
            "0 0 0 LW * ?",
            "0 0 0 L-1W * ?",
            "0 0 0 L-27W * ?",
            "0 0 0 ? * 1",
            "0 0 0 ? * 7",
            "0 0 0 ? * 2,4,6",
            "0 0 0 ? * 1-7",
            "0 0 0 ? * 1L",
            "0 0 0 ? * 4L",
            "0 0 0 ? * 7L",
            "0 0 0 ? * 1#1",
            "0 0 0 ? * 7#4",
            "0 0 0 ? * 3#5",
        ];
        for expr in exprs {
            let schedule = cron(expr);
            for year in (1970..=2030).chain([2096, 2100, 2104, 2199]) {
                for month in 1..=12 {
                    let mask = schedule.day_mask(year, month);
                    for day in 1..=31 {
                        let expected = NaiveDate::from_ymd_opt(year, month, day)
                            .is_some_and(|d| schedule.matches_date(d));
                        assert_eq!(has_bit(mask, day), expected, "{expr} {year}-{month}-{day}");
                    }
                    assert_eq!(mask & 1, 0, "{expr}: bit 0 is never a day");
                }
            }
        }
    }

    #[test]
    fn property_successive_fires_are_consecutive() {
        // Over a dense expression, walking next_after from a start covers
        // exactly the matching seconds of a span.
        let schedule = cron("*/7 58-3 23,0 * * ?");
        let start = utc("2024-12-31T22:00:00");
        let end = utc("2025-01-01T02:00:00");
        let mut walked = Vec::new();
        let mut t = start;
        while let Some(n) = schedule.next_after(t) {
            if n > end {
                break;
            }
            walked.push(n);
            t = n;
        }
        let mut brute = Vec::new();
        let mut s = start + Duration::seconds(1);
        while s <= end {
            if schedule.matches(s) {
                brute.push(s);
            }
            s += Duration::seconds(1);
        }
        assert!(!walked.is_empty());
        assert_eq!(walked, brute);
    }
}
