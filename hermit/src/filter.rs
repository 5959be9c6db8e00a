//! `hermit ls -filter`: parsing, matching, and the newest-first selection of `-n`.

use super::error::HermitError;
use super::view::{parse_state, TaskView};
use eremetic_model::task::{StateGroup, TaskState};

/// One client-side condition of `-filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `min_age=<duration>`: last update at least this many seconds ago.
    MinAge(f64),
    /// `max_age=<duration>`: last update at most this many seconds ago.
    MaxAge(f64),
    /// `status=<state>`: the current state.
    Status(TaskState),
    /// `user=<user>`: the task's user.
    User(String),
    /// `name=<name>`: the task's exact name.
    Name(String),
}

/// The filter names, for messages.
const NAMES: &str = "min_age, max_age, status, user, name";

/// Parses `k=v,k=v`. Unknown names, a missing `=`, bad durations and unknown states are
/// usage errors (Eremetic's hermit ignored unknown names and panicked on `status`, E-28).
pub fn parse_filters(text: &str) -> Result<Vec<Filter>, HermitError> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(parse_one)
        .collect()
}

fn parse_one(part: &str) -> Result<Filter, HermitError> {
    let usage = |reason: String| HermitError::Usage(format!("-filter {part:?}: {reason}"));
    let Some((name, value)) = part.split_once('=') else {
        return Err(usage(format!(
            "expected NAME=VALUE with NAME one of {NAMES}"
        )));
    };
    let value = value.trim();
    match name.trim() {
        "min_age" => parse_duration(value).map(Filter::MinAge).map_err(usage),
        "max_age" => parse_duration(value).map(Filter::MaxAge).map_err(usage),
        "status" => parse_state(value).map(Filter::Status).ok_or_else(|| {
            usage(
                "unknown state; expected queued, staging, starting, running, terminating, \
                 finished, failed, killed, lost or error"
                    .into(),
            )
        }),
        "user" => Ok(Filter::User(value.to_owned())),
        "name" => Ok(Filter::Name(value.to_owned())),
        other => Err(usage(format!(
            "unknown filter {other:?}; expected one of {NAMES}"
        ))),
    }
}

/// A Go duration (`300ms`, `1.5h`, `2h45m`, `0`) in seconds. Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    if text == "0" {
        return Ok(0.0);
    }
    let bad = || format!("{text:?} is not a duration such as 90s, 5m or 1h30m");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

impl Filter {
    /// Whether `task` passes, at Unix time `now`.
    pub fn matches(&self, task: &TaskView, now: i64) -> bool {
        let age = (now - task.last_updated()) as f64;
        match self {
            Filter::MinAge(seconds) => age >= *seconds,
            Filter::MaxAge(seconds) => age <= *seconds,
            Filter::Status(state) => task.current() == Some(state.as_str()),
            Filter::User(user) => &task.user == user,
            Filter::Name(name) => &task.name == name,
        }
    }
}

/// The server-side `state` query that covers the filters: the groups of the `status=`
/// states; all groups with `all`; `None` (the server's default, active and queued) otherwise.
pub fn state_query(filters: &[Filter], all: bool) -> Option<String> {
    if all {
        return Some("queued,active,terminated".to_owned());
    }
    let mut groups: Vec<&str> = filters
        .iter()
        .filter_map(|filter| match filter {
            Filter::Status(state) => Some(state.group().as_str()),
            _ => None,
        })
        .collect();
    groups.sort_unstable();
    groups.dedup();
    if groups.is_empty() {
        None
    } else {
        // A terminated task may also have no status at all; keep the order stable.
        let order = [
            StateGroup::Queued,
            StateGroup::Active,
            StateGroup::Terminated,
        ];
        let ordered: Vec<&str> = order
            .iter()
            .map(|group| group.as_str())
            .filter(|name| groups.contains(name))
            .collect();
        Some(ordered.join(","))
    }
}

/// The tasks passing every filter, most recently updated first (ties by id), then the first
/// `limit` of them (`None` or negative: all) — truncation after sorting (Eremetic's hermit
/// truncated before, E-28).
pub fn select<T: AsRef<TaskView>>(
    tasks: Vec<T>,
    filters: &[Filter],
    limit: Option<i64>,
    now: i64,
) -> Vec<T> {
    let mut kept: Vec<T> = tasks
        .into_iter()
        .filter(|task| {
            filters
                .iter()
                .all(|filter| filter.matches(task.as_ref(), now))
        })
        .collect();
    kept.sort_by(|a, b| {
        let (a, b) = (a.as_ref(), b.as_ref());
        b.last_updated()
            .cmp(&a.last_updated())
            .then_with(|| a.id.cmp(&b.id))
    });
    if let Some(limit) = limit.and_then(|n| usize::try_from(n).ok()) {
        kept.truncate(limit);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::StatusView;

    fn task(id: &str, state: &str, time: i64) -> TaskView {
        TaskView {
            id: id.into(),
            user: "root".into(),
            name: id.to_uppercase(),
            status: vec![StatusView {
                time,
                status: state.into(),
            }],
            ..TaskView::default()
        }
    }

    #[test]
    fn go_durations_parse_to_seconds() {
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("1.5h"), Ok(5400.0));
        assert_eq!(parse_duration("250ms"), Ok(0.25));
        assert_eq!(parse_duration("0"), Ok(0.0));
        for bad in ["", "5", "5d", "m", "-5m", "1h x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_parse_and_reject_unknown_names() {
        assert_eq!(
            parse_filters("min_age=5m, status=running,user=root,name=x").unwrap(),
            vec![
                Filter::MinAge(300.0),
                Filter::Status(TaskState::Running),
                Filter::User("root".into()),
                Filter::Name("x".into())
            ]
        );
        for bad in ["colour=red", "status", "status=done", "max_age=soon"] {
            let error = parse_filters(bad).unwrap_err();
            assert!(matches!(error, HermitError::Usage(_)), "{bad}");
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[test]
    fn limit_applies_after_sorting_newest_first() {
        let tasks = vec![
            task("old", "TASK_RUNNING", 10),
            task("new", "TASK_RUNNING", 30),
            task("mid", "TASK_RUNNING", 20),
        ];
        let ids = |tasks: Vec<TaskView>| tasks.into_iter().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(ids(select(tasks.clone(), &[], Some(2), 40)), ["new", "mid"]);
        assert_eq!(
            ids(select(tasks.clone(), &[], Some(-1), 40)),
            ["new", "mid", "old"]
        );
        assert_eq!(ids(select(tasks, &[], None, 40)), ["new", "mid", "old"]);
    }

    #[test]
    fn filters_match_state_age_user_and_name() {
        let tasks = vec![
            task("run", "TASK_RUNNING", 90),
            task("end", "TASK_FINISHED", 50),
            task("term", "TASK_TERMINATING", 99),
        ];
        let ids = |filters: &str| {
            select(tasks.clone(), &parse_filters(filters).unwrap(), None, 100)
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("status=finished"), ["end"]);
        assert_eq!(ids("status=terminating"), ["term"]);
        assert_eq!(ids("min_age=10s"), ["run", "end"]);
        assert_eq!(ids("max_age=10s"), ["term", "run"]);
        assert_eq!(ids("user=nobody"), Vec::<String>::new());
        assert_eq!(ids("name=RUN"), ["run"]);
    }

    #[test]
    fn status_filters_widen_the_server_query() {
        let filters = parse_filters("status=finished").unwrap();
        assert_eq!(state_query(&filters, false).as_deref(), Some("terminated"));
        let filters = parse_filters("status=failed,status=queued").unwrap();
        assert_eq!(
            state_query(&filters, false).as_deref(),
            Some("queued,terminated")
        );
        assert_eq!(state_query(&[], false), None);
        assert_eq!(
            state_query(&[], true).as_deref(),
            Some("queued,active,terminated")
        );
    }
}
