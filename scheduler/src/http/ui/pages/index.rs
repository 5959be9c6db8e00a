//! The index page: the launch form and the task list with its filter.

use super::layout::{document, PageKind, Site};
use crate::http::ui::format::Timeline;
use crate::http::ui::html::Html;
use crate::task::{StateFilter, Task};

/// The state filter options, as `(value, label)`; the first is the default.
pub(crate) const STATE_OPTIONS: [(&str, &str); 5] = [
    ("active,queued", "Active and queued"),
    ("queued", "Queued"),
    ("active", "Active"),
    ("terminated", "Terminated"),
    ("active,queued,terminated", "All"),
];

/// The filter the list was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListFilter {
    /// The `state` option value (one of [`STATE_OPTIONS`]).
    pub(crate) state: &'static str,
    /// The exact name, when filtered by name.
    pub(crate) name: Option<String>,
    /// Why the query could not be used (the default filter applies then).
    pub(crate) error: Option<String>,
}

/// The option value of a parsed state filter.
pub(crate) fn option_for(filter: StateFilter) -> &'static str {
    STATE_OPTIONS
        .iter()
        .map(|(value, _)| *value)
        .find(|value| StateFilter::parse(Some(value)).ok() == Some(filter))
        // queued+terminated has no option of its own; "All" is its closest superset.
        .unwrap_or("active,queued,terminated")
}

/// The whole index page.
pub(crate) fn render(site: Site<'_>, tasks: &[Task], filter: &ListFilter, now: i64) -> String {
    let mut main = Html::new();
    launch_form(&mut main);
    task_list(&mut main, site, tasks, filter, now);
    document(site, PageKind::Index, "Tasks", &Html::new(), &main)
}

fn field(html: &mut Html, name: &'static str, label: &'static str, input: &'static str) {
    html.raw("<div class=\"field\"><label for=\"f-")
        .raw(name)
        .raw("\">")
        .raw(label)
        .raw("</label>")
        .raw(input)
        .raw("<span class=\"field-error\" data-field=\"")
        .raw(name)
        .raw("\"></span></div>\n");
}

fn row_group(html: &mut Html, id: &'static str, field: &'static str, legend: &'static str) {
    html.raw("<fieldset class=\"group\"><legend>")
        .raw(legend)
        .raw("</legend>\n<div id=\"")
        .raw(id)
        .raw("\" class=\"rows\" data-field=\"")
        .raw(field)
        .raw("\"></div>\n<button type=\"button\" class=\"add-row\" data-target=\"")
        .raw(id)
        .raw("\">Add</button><span class=\"field-error\" data-field=\"")
        .raw(field)
        .raw("\"></span>\n</fieldset>\n");
}

fn launch_form(html: &mut Html) {
    html.raw("<section class=\"launch\">\n<h2>Launch a task</h2>\n")
        .raw("<form id=\"new-task\" novalidate autocomplete=\"off\">\n<div class=\"fields\">\n");
    field(
        html,
        "image",
        "Image",
        "<input id=\"f-image\" name=\"image\" required placeholder=\"busybox:latest\">",
    );
    field(
        html,
        "command",
        "Command",
        "<input id=\"f-command\" name=\"command\" placeholder=\"echo hello\">",
    );
    field(
        html,
        "cpu",
        "CPUs",
        "<input id=\"f-cpu\" name=\"cpu\" type=\"number\" step=\"0.1\" min=\"0\" value=\"1.0\">",
    );
    field(
        html,
        "mem",
        "Memory (MiB)",
        "<input id=\"f-mem\" name=\"mem\" type=\"number\" step=\"1\" min=\"0\" value=\"128\">",
    );
    field(
        html,
        "name",
        "Name",
        "<input id=\"f-name\" name=\"name\" placeholder=\"generated when empty\">",
    );
    field(html, "callback_uri", "Callback URL", "<input id=\"f-callback_uri\" name=\"callback_uri\" type=\"url\" placeholder=\"https://example.org/hook\">");
    html.raw("</div>\n");
    row_group(html, "env-rows", "env", "Environment");
    row_group(
        html,
        "masked-env-rows",
        "masked_env",
        "Masked environment (never shown again)",
    );
    row_group(html, "label-rows", "labels", "Labels");
    row_group(html, "port-rows", "ports", "Ports");
    row_group(html, "volume-rows", "volumes", "Volumes");
    html.raw("<p id=\"form-error\" class=\"form-error\" hidden></p>\n")
        .raw("<div class=\"buttons\"><button type=\"submit\" id=\"submit-task\">Launch</button></div>\n")
        .raw("<p id=\"submit-result\" class=\"submit-result\" hidden></p>\n</form>\n")
        .raw(concat!(
            "<template id=\"tpl-env-rows\"><div class=\"row\"><input class=\"key\" placeholder=\"NAME\">",
            "<input class=\"value\" placeholder=\"value\"><button type=\"button\" class=\"remove-row\" title=\"Remove\">×</button></div></template>\n",
            "<template id=\"tpl-masked-env-rows\"><div class=\"row\"><input class=\"key\" placeholder=\"NAME\">",
            "<input class=\"value\" type=\"password\" placeholder=\"secret\"><button type=\"button\" class=\"remove-row\" title=\"Remove\">×</button></div></template>\n",
            "<template id=\"tpl-label-rows\"><div class=\"row\"><input class=\"key\" placeholder=\"key\">",
            "<input class=\"value\" placeholder=\"value\"><button type=\"button\" class=\"remove-row\" title=\"Remove\">×</button></div></template>\n",
            "<template id=\"tpl-port-rows\"><div class=\"row\"><input class=\"container-port\" type=\"number\" min=\"1\" max=\"65535\" placeholder=\"container port\">",
            "<select class=\"protocol\"><option value=\"tcp\">tcp</option><option value=\"udp\">udp</option></select>",
            "<button type=\"button\" class=\"remove-row\" title=\"Remove\">×</button></div></template>\n",
            "<template id=\"tpl-volume-rows\"><div class=\"row\"><input class=\"host-path\" placeholder=\"/host/path\">",
            "<input class=\"container-path\" placeholder=\"/container/path\"><button type=\"button\" class=\"remove-row\" title=\"Remove\">×</button></div></template>\n",
        ))
        .raw("</section>\n");
}

fn filter_form(html: &mut Html, site: Site<'_>, filter: &ListFilter) {
    html.raw("<form id=\"filter\" method=\"get\" action=\"")
        .text(site.prefix)
        .raw("/\">\n<label>Name <input name=\"name\" type=\"search\" value=\"")
        .text(filter.name.as_deref().unwrap_or(""))
        .raw("\" placeholder=\"exact name\"></label>\n<label>State <select name=\"state\">");
    for (value, label) in STATE_OPTIONS {
        html.raw("<option value=\"").raw(value).raw("\"");
        if value == filter.state {
            html.raw(" selected");
        }
        html.raw(">").raw(label).raw("</option>");
    }
    html.raw("</select></label>\n<button type=\"submit\">Filter</button>\n</form>\n");
    if let Some(error) = &filter.error {
        html.raw("<p class=\"form-error\" id=\"filter-error\">")
            .text(error)
            .raw("</p>\n");
    }
}

fn task_list(html: &mut Html, site: Site<'_>, tasks: &[Task], filter: &ListFilter, now: i64) {
    html.raw("<section class=\"list\">\n<h2>Tasks</h2>\n");
    filter_form(html, site, filter);
    html.raw("<table id=\"tasks\">\n<thead><tr><th>Name</th><th>State</th><th>Image</th>")
        .raw("<th>Age</th><th>Duration</th></tr></thead>\n<tbody>\n");
    if tasks.is_empty() {
        html.raw("<tr class=\"empty\"><td colspan=\"5\">No tasks match the filter.</td></tr>\n");
    }
    for task in tasks {
        task_row(html, site, task, now);
    }
    html.raw("</tbody>\n</table>\n</section>\n");
}

/// One `tr.task`; `data-*` times (Unix seconds) let the script keep age and duration current.
pub(crate) fn task_row(html: &mut Html, site: Site<'_>, task: &Task, now: i64) {
    let state = task.current_state().map_or("", |state| state.as_str());
    let timeline = Timeline::of(task);
    let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
    html.raw("<tr class=\"task\" data-task-id=\"")
        .text(&task.id)
        .raw("\" data-submitted=\"")
        .text(optional(timeline.submitted))
        .raw("\" data-started=\"")
        .text(optional(timeline.started))
        .raw("\" data-ended=\"")
        .text(optional(timeline.ended))
        .raw("\">\n<td class=\"name\"><a class=\"task-link\" href=\"")
        .text(site.prefix)
        .raw("/web/task/")
        .text(&task.id)
        .raw("\">")
        .text(&task.name)
        .raw("</a></td><td class=\"state\" data-state=\"")
        .text(state)
        .raw("\">")
        .text(state)
        .raw("</td><td class=\"image\">")
        .text(&task.request.image)
        .raw("</td><td class=\"age\">")
        .text(timeline.age(now).unwrap_or_default())
        .raw("</td><td class=\"duration\">")
        .text(timeline.run_time(now).unwrap_or_else(|| "—".to_owned()))
        .raw("</td>\n</tr>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_maps_back_to_itself() {
        for (value, _) in STATE_OPTIONS {
            let filter = StateFilter::parse(Some(value)).unwrap();
            assert_eq!(option_for(filter), value);
        }
        let odd = StateFilter::parse(Some("queued,terminated")).unwrap();
        assert_eq!(option_for(odd), "active,queued,terminated");
    }
}
