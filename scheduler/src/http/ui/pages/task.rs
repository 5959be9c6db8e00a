//! The task page: every field (secrets masked), the status timeline, usage, logs, actions.

use std::collections::BTreeMap;

use super::layout::{document, PageKind, Site};
use crate::api::TaskV1;
use crate::http::ui::format::{mebibytes, number, utc};
use crate::http::ui::html::Html;
use crate::service::TaskUsage;
use crate::task::{Task, MASK};

/// One output stream as the page shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogView {
    /// The output so far, ANSI colours rendered.
    pub(crate) content: Html,
    /// A remark shown above it (output truncated, file unreadable).
    pub(crate) note: Option<String>,
}

/// Everything the task page shows.
#[derive(Debug)]
pub(crate) struct TaskView<'a> {
    /// The task.
    pub(crate) task: &'a Task,
    /// Its usage when running.
    pub(crate) usage: Option<TaskUsage>,
    /// Standard output.
    pub(crate) stdout: LogView,
    /// Standard error.
    pub(crate) stderr: LogView,
}

/// The whole task page.
pub(crate) fn render(site: Site<'_>, view: &TaskView<'_>) -> String {
    let task = view.task;
    // The masked document is the single source of what may be shown: secrets never reach it.
    let document_v1 = TaskV1::from_task(task);
    let ended = task.is_terminal();
    let mut attributes = Html::new();
    attributes
        .raw(" data-task-id=\"")
        .text(&task.id)
        .raw("\" data-ended=\"")
        .raw(if ended { "true" } else { "false" })
        .raw("\"");
    let mut main = Html::new();
    heading(&mut main, view, ended);
    summary(&mut main, &document_v1);
    environment(&mut main, &document_v1);
    history(&mut main, task);
    usage(&mut main, view.usage, task.is_running());
    logs(&mut main, view);
    document(site, PageKind::Task, &task.name, &attributes, &main)
}

fn heading(html: &mut Html, view: &TaskView<'_>, ended: bool) {
    let state = view.task.current_state().map_or("", |state| state.as_str());
    html.raw("<section class=\"task-head\">\n<h1 id=\"task-name\">")
        .text(&view.task.name)
        .raw("</h1>\n<p class=\"task-id\">Task <code id=\"task-id\">")
        .text(&view.task.id)
        .raw("</code> <span id=\"state\" class=\"state\" data-state=\"")
        .text(state)
        .raw("\">")
        .text(state)
        .raw("</span></p>\n<div class=\"actions\" id=\"actions\">");
    if ended {
        html.raw("<button type=\"button\" id=\"delete\" class=\"danger\">Delete</button>");
    } else {
        html.raw("<button type=\"button\" id=\"kill\" class=\"danger\">Kill</button>");
    }
    html.raw("<span id=\"action-error\" class=\"form-error\" hidden></span></div>\n</section>\n");
}

fn item(html: &mut Html, label: &'static str, id: &'static str, value: &str) {
    html.raw("<dt>")
        .raw(label)
        .raw("</dt><dd id=\"")
        .raw(id)
        .raw("\">")
        .text(value)
        .raw("</dd>\n");
}

fn or_dash(value: &str) -> &str {
    if value.is_empty() {
        "—"
    } else {
        value
    }
}

fn summary(html: &mut Html, doc: &TaskV1) {
    let common = &doc.common;
    let exit_code = common.exit_code.map(|code| code.to_string());
    let timeout = common.timeout.map(|secs| format!("{secs} s"));
    let args = common.args.join(" ");
    let fetch: Vec<&str> = common.fetch.iter().map(|uri| uri.uri.as_str()).collect();
    let constraints: Vec<String> = doc
        .agent_constraints
        .iter()
        .map(|c| format!("{}={}", c.attribute_name, c.attribute_value))
        .collect();
    html.raw("<section class=\"details\">\n<h2>Task</h2>\n<dl class=\"fields\">\n");
    item(
        html,
        "Exit code",
        "exit-code",
        or_dash(exit_code.as_deref().unwrap_or("")),
    );
    item(
        html,
        "Failure reason",
        "failure-reason",
        or_dash(common.failure_reason.as_deref().unwrap_or("")),
    );
    if let Some(reason) = &common.waiting_reason {
        item(html, "Waiting", "waiting-reason", reason);
    }
    let dropped = [
        ("stdout", "stdout-dropped", common.stdout_dropped_bytes),
        ("stderr", "stderr-dropped", common.stderr_dropped_bytes),
    ];
    for (stream, id, bytes) in dropped.into_iter().filter(|(_, _, bytes)| *bytes > 0) {
        let text = format!("{bytes} bytes of {stream} (over the output limit)");
        item(html, "Output dropped", id, &text);
    }
    item(html, "Image", "image", &common.image);
    item(html, "Command", "command", or_dash(&common.command));
    item(html, "Arguments", "args", or_dash(&args));
    item(html, "User", "user", or_dash(&common.user));
    item(html, "CPUs", "cpu", &number(doc.cpu));
    item(html, "Memory (MiB)", "mem", &number(doc.mem));
    item(html, "Network", "network", &common.network);
    item(html, "DNS", "dns", or_dash(&common.dns));
    item(html, "Host", "hostname", or_dash(&common.hostname));
    item(html, "Agent", "agent-id", or_dash(&doc.agent_id));
    item(html, "Sandbox", "sandbox", or_dash(&common.sandbox_path));
    item(
        html,
        "Callback URL",
        "callback-uri",
        or_dash(&common.callback_uri),
    );
    item(
        html,
        "Timeout",
        "timeout",
        or_dash(timeout.as_deref().unwrap_or("")),
    );
    item(
        html,
        "Relaunches",
        "retry",
        &format!("{} of {}", common.retry, common.retries),
    );
    item(
        html,
        "Force pull",
        "force-pull",
        if common.force_pull_image { "yes" } else { "no" },
    );
    item(
        html,
        "Privileged",
        "privileged",
        if common.privileged { "yes" } else { "no" },
    );
    item(html, "Fetched URIs", "fetch", or_dash(&fetch.join(", ")));
    item(
        html,
        "Volumes from",
        "volumes-from",
        or_dash(&doc.volumes_from.join(", ")),
    );
    item(
        html,
        "Constraints",
        "constraints",
        or_dash(&constraints.join(", ")),
    );
    html.raw("</dl>\n</section>\n");
}

fn key_values(
    html: &mut Html,
    id: &'static str,
    title: &'static str,
    map: &BTreeMap<String, String>,
) {
    html.raw("<div class=\"kv\"><h3>")
        .raw(title)
        .raw("</h3>\n<table id=\"")
        .raw(id)
        .raw("\">\n");
    if map.is_empty() {
        html.raw("<tr class=\"none\"><td>none</td></tr>\n");
    }
    for (key, value) in map {
        html.raw("<tr><th>")
            .text(key)
            .raw("</th><td>")
            .text(value)
            .raw("</td></tr>\n");
    }
    html.raw("</table></div>\n");
}

fn environment(html: &mut Html, doc: &TaskV1) {
    let common = &doc.common;
    // Defence in depth: whatever the document holds, masked values are shown as the mask.
    let masked: BTreeMap<String, String> = common
        .masked_env
        .keys()
        .map(|key| (key.clone(), MASK.to_owned()))
        .collect();
    let ports: BTreeMap<String, String> = common
        .ports
        .iter()
        .map(|port| {
            let host = match port.host_port {
                0 => "not assigned".to_owned(),
                host => format!("host port {host}"),
            };
            (format!("{}/{}", port.container_port, port.protocol), host)
        })
        .collect();
    let volumes: BTreeMap<String, String> = common
        .volumes
        .iter()
        .map(|volume| (volume.host_path.clone(), volume.container_path.clone()))
        .collect();
    html.raw("<section class=\"environment\">\n");
    key_values(html, "env", "Environment", &common.env);
    key_values(html, "masked-env", "Masked environment", &masked);
    key_values(html, "labels", "Labels", &common.labels);
    key_values(html, "ports", "Ports (container → host)", &ports);
    key_values(html, "volumes", "Volumes (host → container)", &volumes);
    html.raw("</section>\n");
}

fn history(html: &mut Html, task: &Task) {
    html.raw("<section class=\"history\">\n<h2>Status history</h2>\n<ol id=\"history\">\n");
    for entry in &task.status {
        let when = utc(entry.time);
        html.raw("<li data-state=\"")
            .text(entry.status)
            .raw("\"><span class=\"state\" data-state=\"")
            .text(entry.status)
            .raw("\">")
            .text(entry.status)
            .raw("</span> <time datetime=\"")
            .text(&when)
            .raw("\">")
            .text(&when)
            .raw("</time></li>\n");
    }
    html.raw("</ol>\n</section>\n");
}

fn usage(html: &mut Html, usage: Option<TaskUsage>, running: bool) {
    let (cpu, memory) = match usage {
        Some(usage) => (
            format!("{} s", number(usage.cpu_seconds)),
            format!(
                "{} of {}",
                mebibytes(usage.memory_bytes),
                mebibytes(usage.memory_limit_bytes)
            ),
        ),
        None => ("—".to_owned(), "—".to_owned()),
    };
    html.raw("<section id=\"usage\" class=\"usage\"");
    if !running {
        html.raw(" hidden");
    }
    html.raw(
        ">\n<h2>Resource usage</h2>\n<dl class=\"fields\"><dt>CPU time</dt><dd id=\"usage-cpu\">",
    )
    .text(cpu)
    .raw("</dd><dt>Memory</dt><dd id=\"usage-mem\">")
    .text(memory)
    .raw("</dd></dl>\n</section>\n");
}

fn logs(html: &mut Html, view: &TaskView<'_>) {
    html.raw("<section class=\"logs\">\n");
    for (title, id, log) in [
        ("stdout", "stdout", &view.stdout),
        ("stderr", "stderr", &view.stderr),
    ] {
        html.raw("<h2>").raw(title).raw("</h2>\n");
        if let Some(note) = &log.note {
            html.raw("<p class=\"log-note\">").text(note).raw("</p>\n");
        }
        html.raw("<pre id=\"")
            .raw(id)
            .raw("\" class=\"log\">")
            .html(&log.content)
            .raw("</pre>\n");
    }
    html.raw("</section>\n");
}
