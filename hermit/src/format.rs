//! Text output of `hermit`: ages, the `task` details and the `ls` table.

use std::collections::BTreeMap;

use super::view::TaskView;

/// Eremetic's hermit age: `About N hour(s) ago`, `N minute(s) ago`, `N second(s) ago`
/// (whole units, rounded down), `just now` under a second, `never` without a status.
/// `now` and `then` are Unix seconds; a `then` in the future counts as now.
pub fn format_age(now: i64, then: i64) -> String {
    if then <= 0 {
        return "never".to_owned();
    }
    let seconds = now.saturating_sub(then).max(0);
    let (hours, minutes) = (seconds / 3600, seconds / 60);
    if hours > 0 {
        format!("About {hours} hour(s) ago")
    } else if minutes > 0 {
        format!("{minutes} minute(s) ago")
    } else if seconds > 0 {
        format!("{seconds} second(s) ago")
    } else {
        "just now".to_owned()
    }
}

fn pairs(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `hermit task`: one `Label: value` line per field, as Eremetic's hermit, plus the exit code
/// and failure reason when known. `now` is the current Unix time.
pub fn task_details(task: &TaskView, now: i64) -> String {
    let mut lines = vec![
        format!("ID: {}", task.id),
        format!("Name: {}", task.name),
        format!("Command: {}", task.command),
    ];
    if !task.args.is_empty() {
        lines.push(format!("Args: {}", task.args.join(" ")));
    }
    lines.extend([
        format!("Image: {}", task.image),
        format!("CPU: {}", task.cpu),
        format!("Memory: {}", task.mem),
        format!("Environment Variables: {}", pairs(&task.env)),
    ]);
    if !task.masked_env.is_empty() {
        lines.push(format!(
            "Masked Environment Variables: {}",
            pairs(&task.masked_env)
        ));
    }
    lines.push(format!("State: {}", task.short_state()));
    if let Some(code) = task.exit_code {
        lines.push(format!("Exit code: {code}"));
    }
    if let Some(reason) = task.failure_reason.as_deref().filter(|r| !r.is_empty()) {
        lines.push(format!("Failure reason: {reason}"));
    }
    if !task.hostname.is_empty() {
        lines.push(format!("Host: {}", task.hostname));
    }
    lines.push(format!(
        "Last updated: {}",
        format_age(now, task.last_updated())
    ));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The header of the `ls` table (Eremetic's columns).
pub(super) const LS_HEADER: [&str; 7] = [
    "TASK ID",
    "NAME",
    "STATE",
    "LAST UPDATED",
    "USER",
    "IMAGE",
    "COMMAND",
];

/// `hermit ls`: the table of `tasks` (already filtered and sorted), columns padded with
/// spaces (Eremetic padded with tabs), the command quoted.
pub fn task_table(tasks: &[TaskView], now: i64) -> String {
    let mut rows = vec![LS_HEADER.map(str::to_owned)];
    rows.extend(tasks.iter().map(|task| {
        [
            task.id.clone(),
            task.name.clone(),
            task.short_state().to_owned(),
            format_age(now, task.last_updated()),
            task.user.clone(),
            task.image.clone(),
            format!("{:?}", task.command),
        ]
    }));
    align(&rows)
}

/// Rows as text, every column but the last padded to its widest cell plus three spaces.
fn align<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if index + 1 < N {
                let pad = widths[index] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::StatusView;

    fn task(id: &str, state: &str, time: i64) -> TaskView {
        TaskView {
            id: id.into(),
            name: format!("name-{id}"),
            image: "img".into(),
            command: "echo \"hi\"".into(),
            cpu: 0.5,
            mem: 64.0,
            status: vec![StatusView {
                time,
                status: state.into(),
            }],
            ..TaskView::default()
        }
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        assert_eq!(format_age(10_000, 10_000 - 7_300), "About 2 hour(s) ago");
        assert_eq!(format_age(10_000, 10_000 - 3_600), "About 1 hour(s) ago");
        assert_eq!(format_age(10_000, 10_000 - 125), "2 minute(s) ago");
        assert_eq!(format_age(10_000, 10_000 - 59), "59 second(s) ago");
        assert_eq!(format_age(10_000, 10_000), "just now");
        assert_eq!(format_age(10_000, 10_005), "just now");
        assert_eq!(format_age(10_000, 0), "never");
    }

    #[test]
    fn task_details_list_every_eremetic_field() {
        let mut view = task("t1", "TASK_FAILED", 100);
        view.env.insert("A".into(), "b=c".into());
        view.masked_env.insert("S".into(), "*******".into());
        view.exit_code = Some(3);
        let text = task_details(&view, 160);
        for line in [
            "ID: t1",
            "Name: name-t1",
            "Command: echo \"hi\"",
            "Image: img",
            "CPU: 0.5",
            "Memory: 64",
            "Environment Variables: A=b=c",
            "Masked Environment Variables: S=*******",
            "State: failed",
            "Exit code: 3",
            "Last updated: 1 minute(s) ago",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn table_aligns_columns_and_quotes_commands() {
        let text = task_table(
            &[
                task("a", "TASK_RUNNING", 95),
                task("long-id", "TASK_TERMINATING", 90),
            ],
            100,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("TASK ID   NAME"), "{text}");
        let state_column = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][state_column..state_column + 7], "running");
        assert_eq!(&lines[2][state_column..state_column + 11], "terminating");
        assert!(lines[1].ends_with("\"echo \\\"hi\\\"\""), "{text}");
    }
}
