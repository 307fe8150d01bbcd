//! A plan as text (terminal), JSON (scripts, saved plans) or Markdown (pull-request comments).
//! Plans are redacted when they are made, so no renderer ever sees a secret.

use super::plan::{Action, AttributeChange, Plan, PlanValue, ResourceChange};
use std::fmt::Write;

/// GitHub refuses comments over 65,536 characters; stay clearly below.
pub const MARKDOWN_LIMIT: usize = 65_000;

/// The hidden first line of the Markdown, by which a workflow finds its earlier comment.
pub fn markdown_marker(plan: &Plan) -> String {
    format!("<!-- ferry-plan: {} -->", plan.key())
}

/// `--detailed-exitcode`: 0 when there is nothing to do, 2 when there are changes. (Errors
/// exit 1, from the CLI.)
pub fn detailed_exit_code(plan: &Plan) -> i32 {
    if plan.has_changes() {
        2
    } else {
        0
    }
}

/// The plan's JSON, as saved by `--out` and printed by `--format json`.
pub fn json(plan: &Plan) -> String {
    let mut s =
        serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// A value for people: JSON, or `(known after apply)`, or `(sensitive)`.
pub fn show_value(v: &PlanValue) -> String {
    match v {
        PlanValue::Known(v) => v.to_string(),
        PlanValue::Unknown => "(known after apply)".into(),
        PlanValue::Sensitive => super::redact::REDACTED.into(),
    }
}

fn attr_line(c: &AttributeChange) -> String {
    let tail = if c.forces_replacement {
        "  # forces replacement"
    } else {
        ""
    };
    match (&c.before, &c.after) {
        (None, Some(a)) => format!("+ {} = {}{tail}", c.path, show_value(a)),
        (Some(b), None) => format!("- {} = {}{tail}", c.path, show_value(b)),
        (Some(b), Some(a)) => format!("~ {}: {} → {}{tail}", c.path, show_value(b), show_value(a)),
        (None, None) => format!("~ {}{tail}", c.path),
    }
}

struct Paint(bool);

impl Paint {
    fn action(&self, a: Action, text: &str) -> String {
        let code = match a {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::NoOp => "0",
        };
        self.code(code, text)
    }
    fn code(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn order_key(c: &ResourceChange) -> (u8, &str) {
    let rank = match c.action {
        Action::Delete => 0,
        Action::Replace => 1,
        Action::Create => 2,
        Action::Update => 3,
        Action::NoOp => 4,
    };
    (rank, c.address.as_str())
}

/// Changes that do something, deletions and replacements first.
fn ordered(plan: &Plan) -> Vec<&ResourceChange> {
    let mut v: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    v.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    v
}

fn drifted(plan: &Plan) -> Vec<&ResourceChange> {
    plan.changes.iter().filter(|c| c.drift.is_some()).collect()
}

fn drift_lines(c: &ResourceChange) -> Vec<String> {
    match &c.drift {
        Some(d) if d.gone => vec!["deleted outside ferry".into()],
        Some(d) => d.changes.iter().map(attr_line).collect(),
        None => vec![],
    }
}

fn header(plan: &Plan) -> String {
    let state = match &plan.state {
        Some(s) => format!("state serial {}", s.serial),
        None => "no state yet".into(),
    };
    let mut bits = vec![state];
    bits.push(if plan.refreshed {
        "refreshed".into()
    } else {
        "not refreshed".into()
    });
    if plan.destroy {
        bits.push("destroy".into());
    }
    if !plan.targets.is_empty() {
        bits.push(format!("target {}", plan.targets.join(", ")));
    }
    format!("ferry plan for {} ({})", plan.key(), bits.join(", "))
}

/// The plan for a terminal. ANSI colour only when `color` is true.
pub fn text(plan: &Plan, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(plan));
    if plan.sensitive_revealed {
        let _ = writeln!(
            out,
            "{}",
            p.code(
                "31",
                "warning: sensitive values are shown (revealed on request)"
            )
        );
    }
    let drift = drifted(plan);
    if !drift.is_empty() {
        let _ = writeln!(out, "\nChanged outside ferry (drift):");
        for c in drift {
            let _ = writeln!(out, "  {} {}", p.code("33", "!"), c.address);
            for l in drift_lines(c) {
                let _ = writeln!(out, "      {l}");
            }
        }
    }
    let changes = ordered(plan);
    if changes.is_empty() {
        let _ = writeln!(out, "\nNo changes. The deployment matches the manifest.");
    } else {
        let _ = writeln!(out, "\nChanges:");
        for c in changes {
            let mut title = format!(
                "{} {}  ({}, {})",
                c.action.symbol(),
                c.address,
                c.kind,
                c.action.as_str()
            );
            if c.drift.is_some() {
                title.push_str(", drift");
            }
            let _ = writeln!(out, "  {}", p.action(c.action, &title));
            for a in &c.changes {
                let _ = writeln!(out, "      {}", attr_line(a));
            }
        }
    }
    if !plan.checks.is_empty() {
        let _ = writeln!(out, "\n{}", checks_line(plan));
        for c in plan.refused() {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                p.code("31", "✗"),
                c.address,
                c.message.as_deref().unwrap_or("refused")
            );
        }
    }
    let _ = writeln!(out, "\n{}", summary_text(plan));
    out
}

/// `Checked by the cloud (dry run): 3 accepted, 1 refused.`
fn checks_line(plan: &Plan) -> String {
    let refused = plan.refused().count();
    format!(
        "Checked by the cloud (server-side dry run): {} accepted, {refused} refused.",
        plan.checks.len() - refused
    )
}

fn summary_text(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut line = s.line();
    if s.no_op > 0 {
        let _ = write!(line, " {} unchanged.", s.no_op);
    }
    line
}

fn md_escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

fn md_fence_safe(s: &str) -> String {
    s.replace("```", "'''")
}

fn md_resource_block(c: &ResourceChange) -> String {
    let mut s = format!("{} {} ({})\n", c.action.symbol(), c.address, c.kind);
    for a in &c.changes {
        let _ = writeln!(s, "    {}", attr_line(a));
    }
    md_fence_safe(&s)
}

/// Builds Markdown within a character budget, remembering what it had to leave out.
struct Budget {
    out: String,
    limit: usize,
    cut: Vec<String>,
}

impl Budget {
    fn fits(&self, extra: usize, reserve: usize) -> bool {
        self.out.len() + extra + reserve <= self.limit
    }
}

/// Room kept for closing tags and the note about what was cut.
const RESERVE: usize = 600;

/// The plan as a pull-request comment: hidden marker, summary line outside any
/// `<details>`, a table with deletions and replacements first, drift in its own section,
/// attribute details folded, and cut to stay under [`MARKDOWN_LIMIT`] characters.
pub fn markdown(plan: &Plan) -> String {
    markdown_with_limit(plan, MARKDOWN_LIMIT)
}

/// [`markdown`] with another limit (for tests).
pub fn markdown_with_limit(plan: &Plan, limit: usize) -> String {
    let mut b = Budget {
        out: String::new(),
        limit,
        cut: vec![],
    };
    let _ = writeln!(b.out, "{}", markdown_marker(plan));
    let _ = writeln!(
        b.out,
        "### ferry plan: `{}` · stage `{}` · `{}`{}\n",
        md_escape_cell(&plan.service),
        md_escape_cell(&plan.stage),
        md_escape_cell(&plan.provider),
        if plan.destroy { " · destroy" } else { "" }
    );
    let _ = writeln!(b.out, "**{}**\n", summary_text(plan));
    if plan.sensitive_revealed {
        let _ = writeln!(
            b.out,
            "> [!CAUTION]\n> This plan was made with sensitive values revealed.\n"
        );
    }
    let drift = drifted(plan);
    if !drift.is_empty() {
        let _ = writeln!(
            b.out,
            "> [!WARNING]\n> {} resource{} changed outside ferry (drift); this plan puts {} back. See **Drift** below.\n",
            drift.len(),
            if drift.len() == 1 { "" } else { "s" },
            if drift.len() == 1 { "it" } else { "them" },
        );
    }
    if !plan.refreshed {
        let _ = writeln!(
            b.out,
            "_Planned from state alone (`--refresh=false`): drift was not checked._\n"
        );
    }
    if !plan.checks.is_empty() {
        let _ = writeln!(b.out, "_{}_\n", checks_line(plan));
        for c in plan.refused() {
            let line = format!(
                "> [!CAUTION]\n> `{}` was refused in the dry run: {}\n\n",
                md_escape_cell(&c.address),
                md_escape_cell(c.message.as_deref().unwrap_or("refused"))
            );
            if b.fits(line.len(), RESERVE) {
                b.out.push_str(&line);
            }
        }
    }

    let changes = ordered(plan);
    if !changes.is_empty() {
        let _ = writeln!(b.out, "| | Resource | Type | Action |\n|---|---|---|---|");
        for (rows, c) in changes.iter().enumerate() {
            let icon = match c.action {
                Action::Create => "🟢",
                Action::Update => "🟡",
                Action::Replace => "🟣",
                Action::Delete => "🔴",
                Action::NoOp => "",
            };
            let mut action = c.action.as_str().to_owned();
            if c.drift.is_some() {
                action.push_str(" (drift)");
            }
            let row = format!(
                "| {icon} | `{}` | `{}` | {action} |\n",
                md_escape_cell(&c.address),
                md_escape_cell(&c.kind)
            );
            if !b.fits(row.len(), RESERVE) {
                b.cut.push(format!("{} table rows", changes.len() - rows));
                break;
            }
            b.out.push_str(&row);
        }
        b.out.push('\n');
    }

    if !drift.is_empty() {
        let open = format!(
            "#### Drift\n\n<details><summary>{} resource{} changed outside ferry</summary>\n\n```diff\n",
            drift.len(),
            if drift.len() == 1 { "" } else { "s" }
        );
        let close = "```\n\n</details>\n\n";
        if b.fits(open.len() + close.len(), RESERVE) {
            b.out.push_str(&open);
            for (shown, c) in drift.iter().enumerate() {
                let mut block = format!("! {}\n", c.address);
                for l in drift_lines(c) {
                    let _ = writeln!(block, "    {l}");
                }
                let block = md_fence_safe(&block);
                if !b.fits(block.len() + close.len(), RESERVE) {
                    b.cut.push(format!(
                        "drift details of {} resources",
                        drift.len() - shown
                    ));
                    break;
                }
                b.out.push_str(&block);
            }
            b.out.push_str(close);
        } else {
            b.cut.push("the drift section".into());
        }
    }

    if !changes.is_empty() {
        let open = "<details><summary>Details</summary>\n\n```diff\n";
        let close = "```\n\n</details>\n";
        if b.fits(open.len() + close.len(), RESERVE) {
            b.out.push_str(open);
            for (shown, c) in changes.iter().enumerate() {
                let block = md_resource_block(c);
                if !b.fits(block.len() + close.len(), RESERVE) {
                    b.cut.push(format!(
                        "attribute details of {} resources",
                        changes.len() - shown
                    ));
                    break;
                }
                b.out.push_str(&block);
            }
            b.out.push_str(close);
        } else {
            b.cut.push("the details section".into());
        }
    } else {
        let _ = writeln!(b.out, "No changes. The deployment matches the manifest.");
    }

    if !b.cut.is_empty() {
        let _ = write!(
            b.out,
            "\n> [!NOTE]\n> This comment was cut to stay under {} characters: {} left out. Run `ferry show plan.json` for the whole plan.\n",
            plan_limit_text(b.limit),
            b.cut.join(", ")
        );
    }
    b.out
}

fn plan_limit_text(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
