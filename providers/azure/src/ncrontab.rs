//! `rate()` and AWS cron translated to the six-field NCRONTAB of Azure Functions' timer
//! trigger: `{second} {minute} {hour} {day} {month} {day-of-week}`.
//!
//! NCRONTAB has no year field, no `?`, no `L`/`W`/`#`, and a step restarts at every boundary of
//! the next field up (`*/7` days restarts on the 1st of each month). So a translation is exact
//! or it is an error that says why and what would work; it is never an approximation.

use ferry_core::schedule::{self, RateUnit, Schedule};

/// The NCRONTAB expression that fires exactly when `expr` (`rate(...)` or `cron(...)`) does.
pub fn translate(expr: &str) -> Result<String, String> {
    match schedule::parse(expr)? {
        Schedule::Rate { value, unit } => rate(value, unit, expr),
        Schedule::Cron(fields) => cron(&fields, expr),
    }
}

fn rate(value: u32, unit: RateUnit, expr: &str) -> Result<String, String> {
    // A step is exact only when it divides the next field's span: 60 minutes, 24 hours.
    let out = match unit {
        RateUnit::Minute if value == 1 => "0 * * * * *".to_owned(),
        RateUnit::Minute if 60u32.is_multiple_of(value) => format!("0 */{value} * * * *"),
        RateUnit::Minute if value.is_multiple_of(60) && 24u32.is_multiple_of(value / 60) => {
            hours(value / 60)
        }
        RateUnit::Hour if 24u32.is_multiple_of(value) => hours(value),
        RateUnit::Day if value == 1 => "0 0 0 * * *".to_owned(),
        _ => {
            return Err(format!(
                "`{expr}` cannot be expressed in Azure's NCRONTAB: a step there restarts every {} (so it would not fire at even intervals); use a period that divides {} (or `rate(1 day)`), or a `cron(...)` schedule",
                match unit {
                    RateUnit::Minute => "hour",
                    RateUnit::Hour => "day",
                    RateUnit::Day => "month",
                },
                match unit {
                    RateUnit::Minute => "60 minutes or 24 hours",
                    RateUnit::Hour => "24 hours",
                    RateUnit::Day => "nothing in days",
                }
            ))
        }
    };
    Ok(out)
}

fn hours(n: u32) -> String {
    if n == 1 {
        "0 0 * * * *".to_owned()
    } else if n == 24 {
        "0 0 0 * * *".to_owned()
    } else {
        format!("0 0 */{n} * * *")
    }
}

fn cron(f: &[String; 6], expr: &str) -> Result<String, String> {
    schedule::unix_cron(f, expr, "Azure's NCRONTAB").map(|c| format!("0 {c}"))
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn rates_that_divide_their_field() {
        assert_eq!(translate("rate(1 minute)").unwrap(), "0 * * * * *");
        assert_eq!(translate("rate(5 minutes)").unwrap(), "0 */5 * * * *");
        assert_eq!(translate("rate(30 minutes)").unwrap(), "0 */30 * * * *");
        assert_eq!(translate("rate(120 minutes)").unwrap(), "0 0 */2 * * *");
        assert_eq!(translate("rate(1 hour)").unwrap(), "0 0 * * * *");
        assert_eq!(translate("rate(6 hours)").unwrap(), "0 0 */6 * * *");
        assert_eq!(translate("rate(24 hours)").unwrap(), "0 0 0 * * *");
        assert_eq!(translate("rate(1440 minutes)").unwrap(), "0 0 0 * * *");
        assert_eq!(translate("rate(1 day)").unwrap(), "0 0 0 * * *");
    }

    #[test]
    fn rates_that_would_drift_are_refused() {
        for r in [
            "rate(7 minutes)",
            "rate(90 minutes)",
            "rate(5 hours)",
            "rate(2 days)",
        ] {
            let e = translate(r).unwrap_err();
            assert!(e.contains("NCRONTAB"), "{r}: {e}");
            assert!(e.contains(r), "{r}: {e}");
        }
    }

    #[test]
    fn aws_cron() {
        assert_eq!(translate("cron(0 3 * * ? *)").unwrap(), "0 0 3 * * *");
        assert_eq!(
            translate("cron(0/15 8-17 ? * MON-FRI *)").unwrap(),
            "0 0/15 8-17 * * MON-FRI"
        );
        // AWS's 1 (Sunday) .. 7 (Saturday) become 0 .. 6.
        assert_eq!(translate("cron(30 9 ? * 2-6 *)").unwrap(), "0 30 9 * * 1-5");
        assert_eq!(translate("cron(0 12 ? * 1,7 *)").unwrap(), "0 0 12 * * 0,6");
        assert_eq!(translate("cron(0 0 1 JAN ? *)").unwrap(), "0 0 0 1 JAN *");
    }

    #[test]
    fn aws_only_cron_features_are_refused() {
        assert!(translate("cron(0 12 * * ? 2030)")
            .unwrap_err()
            .contains("year"));
        assert!(translate("cron(0 18 L * ? *)").unwrap_err().contains("`L`"));
        assert!(translate("cron(0 18 ? * 6#3 *)").unwrap_err().contains("#"));
        assert!(translate("cron(0 18 15W * ? *)").unwrap_err().contains("W"));
        assert!(translate("every day").is_err());
    }
}
