//! Schedule expressions: `rate(N unit)` and AWS's six-field `cron(min hour dom month dow year)`.
//! Parsed once here; each provider translates the parsed form (NCRONTAB for Azure, unix cron
//! for Cloud Scheduler).

use std::fmt;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every `value` `unit`s.
    Rate {
        /// How many units.
        value: u32,
        /// The unit.
        unit: RateUnit,
    },
    /// AWS cron: minutes, hours, day-of-month, month, day-of-week, year.
    Cron(Box<[String; 6]>),
}

/// Unit of a `rate()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days.
    Day,
}

impl Schedule {
    /// The period of a rate in seconds.
    pub fn rate_seconds(&self) -> Option<u64> {
        match self {
            Schedule::Rate { value, unit } => Some(
                u64::from(*value)
                    * match unit {
                        RateUnit::Minute => 60,
                        RateUnit::Hour => 3600,
                        RateUnit::Day => 86400,
                    },
            ),
            Schedule::Cron(_) => None,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Rate { value, unit } => {
                let u = match unit {
                    RateUnit::Minute => "minute",
                    RateUnit::Hour => "hour",
                    RateUnit::Day => "day",
                };
                write!(f, "rate({value} {u}{})", if *value == 1 { "" } else { "s" })
            }
            Schedule::Cron(fields) => write!(f, "cron({})", fields.join(" ")),
        }
    }
}

/// Parses `rate(...)` or `cron(...)`; the error says what is wrong and shows a correct form.
pub fn parse(expr: &str) -> Result<Schedule, String> {
    let e = expr.trim();
    if let Some(inner) = e.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        return parse_rate(inner.trim());
    }
    if let Some(inner) = e.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        return parse_cron(inner.trim());
    }
    Err(format!(
        "`{e}` is not a schedule: write `rate(5 minutes)` or `cron(0 12 * * ? *)`"
    ))
}

fn parse_rate(inner: &str) -> Result<Schedule, String> {
    let mut it = inner.split_whitespace();
    let (Some(n), Some(u), None) = (it.next(), it.next(), it.next()) else {
        return Err(format!(
            "`rate({inner})` needs a number and a unit, such as `rate(5 minutes)`"
        ));
    };
    let value: u32 = n
        .parse()
        .map_err(|_| format!("`{n}` in `rate({inner})` is not a positive whole number"))?;
    if value == 0 {
        return Err(format!("`rate({inner})` must be at least 1"));
    }
    let (unit, singular) = match u {
        "minute" => (RateUnit::Minute, true),
        "minutes" => (RateUnit::Minute, false),
        "hour" => (RateUnit::Hour, true),
        "hours" => (RateUnit::Hour, false),
        "day" => (RateUnit::Day, true),
        "days" => (RateUnit::Day, false),
        _ => {
            return Err(format!(
                "`{u}` in `rate({inner})` is not a unit: use minute(s), hour(s) or day(s)"
            ))
        }
    };
    if singular != (value == 1) {
        let fixed = if value == 1 {
            u.trim_end_matches('s').to_owned()
        } else {
            format!("{u}s")
        };
        return Err(format!(
            "`rate({inner})`: write `rate({value} {fixed})` (AWS rejects `{u}` with {value})"
        ));
    }
    Ok(Schedule::Rate { value, unit })
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_cron(inner: &str) -> Result<Schedule, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "`cron({inner})` has {} fields; AWS cron has six: minutes hours day-of-month month day-of-week year, e.g. `cron(0 12 * * ? *)`",
            fields.len()
        ));
    }
    let specs: [(&str, u32, u32, &[&str]); 6] = [
        ("minutes", 0, 59, &[]),
        ("hours", 0, 23, &[]),
        ("day-of-month", 1, 31, &[]),
        ("month", 1, 12, MONTHS),
        ("day-of-week", 1, 7, DAYS),
        ("year", 1970, 2199, &[]),
    ];
    for (i, (f, (name, lo, hi, names))) in fields.iter().zip(specs).enumerate() {
        check_field(f, name, lo, hi, names, i).map_err(|m| format!("`cron({inner})`: {m}"))?;
    }
    let (dom, dow) = (fields[2], fields[4]);
    if (dom == "?") == (dow == "?") {
        return Err(format!(
            "`cron({inner})`: exactly one of day-of-month and day-of-week must be `?` (AWS rule), e.g. `cron(0 12 * * ? *)`"
        ));
    }
    let arr: [String; 6] = std::array::from_fn(|i| fields[i].to_owned());
    Ok(Schedule::Cron(Box::new(arr)))
}

fn check_field(
    f: &str,
    name: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    idx: usize,
) -> Result<(), String> {
    if f == "*" || (f == "?" && (idx == 2 || idx == 4)) {
        return Ok(());
    }
    let value = |s: &str| -> Result<u32, String> {
        if let Some(p) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(p as u32 + lo);
        }
        let v: u32 = s
            .parse()
            .map_err(|_| format!("`{s}` is not valid in the {name} field"))?;
        if v < lo || v > hi {
            return Err(format!("{v} is outside the {name} range {lo}-{hi}"));
        }
        Ok(v)
    };
    for part in f.split(',') {
        // Day-of-month `L`, `W` and day-of-week `L`, `#` are AWS extensions.
        if idx == 2 && (part == "L" || part.ends_with('W')) {
            continue;
        }
        if idx == 4 && (part.ends_with('L') || part.contains('#')) {
            continue;
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(s) = step {
            let s: u32 = s
                .parse()
                .map_err(|_| format!("step `{s}` in the {name} field is not a number"))?;
            if s == 0 {
                return Err(format!("step 0 in the {name} field"));
            }
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                value(a)?;
                value(b)?;
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}

/// AWS cron's six fields as the five fields of unix cron (`min hour dom month dow`, Sunday 0),
/// which NCRONTAB (with a seconds field in front) and Cloud Scheduler share. `target` names the
/// format in errors. Exact or an error: no year but `*`, no `L`/`W`/`#`.
pub fn unix_cron(fields: &[String; 6], expr: &str, target: &str) -> Result<String, String> {
    let [min, hour, dom, month, dow, year] = fields;
    if year != "*" {
        return Err(format!(
            "`{expr}`: {target} has no year field; only `*` can be translated"
        ));
    }
    for (field, name) in [(dom, "day-of-month"), (dow, "day-of-week")] {
        if field.contains('L') || field.contains('W') || field.contains('#') {
            return Err(format!(
                "`{expr}`: `{field}` in the {name} field (`L`, `W`, `#`) has no {target} equivalent"
            ));
        }
    }
    let dom = if dom == "?" {
        "*".to_owned()
    } else {
        dom.clone()
    };
    let dow = if dow == "?" {
        "*".to_owned()
    } else {
        day_of_week(dow, expr)?
    };
    Ok(format!("{min} {hour} {dom} {month} {dow}"))
}

/// AWS numbers days 1-7 from Sunday; unix cron 0-6 from Sunday. Names are the same in both.
fn day_of_week(field: &str, expr: &str) -> Result<String, String> {
    let shift = |s: &str| -> Result<String, String> {
        if s == "*" || s.chars().all(|c| c.is_ascii_alphabetic()) {
            return Ok(s.to_owned());
        }
        let n: u32 = s
            .parse()
            .map_err(|_| format!("`{expr}`: `{s}` is not a day of the week"))?;
        Ok((n - 1).to_string())
    };
    let mut parts = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let range = match range.split_once('-') {
            Some((a, b)) => format!("{}-{}", shift(a)?, shift(b)?),
            None => shift(range)?,
        };
        parts.push(match step {
            Some(s) => format!("{range}/{s}"),
            None => range,
        });
    }
    Ok(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse("rate(5 minutes)").unwrap().rate_seconds(), Some(300));
        assert_eq!(parse("rate(1 day)").unwrap().to_string(), "rate(1 day)");
        assert!(parse("rate(1 minutes)")
            .unwrap_err()
            .contains("rate(1 minute)"));
        assert!(parse("rate(0 hours)").is_err());
        assert!(parse("rate(5 weeks)").is_err());
    }

    #[test]
    fn crons() {
        assert!(parse("cron(0 12 * * ? *)").is_ok());
        assert!(parse("cron(0/15 8-17 ? * MON-FRI *)").is_ok());
        assert!(parse("cron(0 18 L * ? 2030)").is_ok());
        assert!(parse("cron(0 12 * * *)").unwrap_err().contains("six"));
        assert!(parse("cron(0 12 * * * *)").unwrap_err().contains("`?`"));
        assert!(parse("cron(61 12 * * ? *)").unwrap_err().contains("0-59"));
        assert!(parse("every day").is_err());
    }
}
