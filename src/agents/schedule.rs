//! When a schedule fires next.

use chrono::{DateTime, Utc};

use crate::model::ScheduleKind;

/// The first time after `after` that the schedule fires, if it ever does.
pub fn next_after(kind: &ScheduleKind, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match kind {
        ScheduleKind::Interval(secs) => {
            Some(after + chrono::Duration::seconds(i64::try_from(*secs).ok()?))
        }
        ScheduleKind::Cron(expression) => expression
            .parse::<croner::Cron>()
            .ok()?
            .find_next_occurrence(&after, false)
            .ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_and_interval_next_times() {
        let at = DateTime::parse_from_rfc3339("2024-01-01T10:07:30Z")
            .unwrap()
            .to_utc();
        let next = next_after(&ScheduleKind::Cron("*/15 * * * *".into()), at).unwrap();
        assert_eq!(next.to_rfc3339(), "2024-01-01T10:15:00+00:00");
        let next = next_after(&ScheduleKind::Interval(90), at).unwrap();
        assert_eq!(next.to_rfc3339(), "2024-01-01T10:09:00+00:00");
    }
}
