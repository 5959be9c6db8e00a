//! The cluster page: which backend runs the tasks, its capacity and what is free, the queue,
//! and the backend's own part: the local engine's settings, or the Mesos master, the
//! framework's connection and the agents seen in offers.

use std::collections::BTreeMap;

use super::layout::{document, PageKind, Site};
use crate::backend::view::{ClusterView, LocalView, MesosValue, MesosView};
use crate::http::ui::format::{number, utc};
use crate::http::ui::html::Html;
use crate::service::ClusterStatus;

fn row(html: &mut Html, label: &'static str, id: &'static str, value: &str, unit: &'static str) {
    html.raw("<dt>")
        .raw(label)
        .raw("</dt><dd><span id=\"")
        .raw(id)
        .raw("\">")
        .text(value)
        .raw("</span>")
        .raw(unit)
        .raw("</dd>\n");
}

/// The whole cluster page.
pub(crate) fn render(site: Site<'_>, status: &ClusterStatus) -> String {
    let (total, free) = (&status.total, &status.free);
    let mut main = Html::new();
    main.raw("<section class=\"cluster\">\n<h1>Cluster</h1>\n<dl class=\"fields\">\n");
    row(&mut main, "Backend", "backend", &status.backend, "");
    row(&mut main, "CPUs", "cpus-total", &number(total.cpus), "");
    row(&mut main, "CPUs free", "cpus-free", &number(free.cpus), "");
    row(
        &mut main,
        "Memory",
        "mem-total",
        &number(total.mem_mib),
        " MiB",
    );
    row(
        &mut main,
        "Memory free",
        "mem-free",
        &number(free.mem_mib),
        " MiB",
    );
    row(
        &mut main,
        "Host ports",
        "ports-total",
        &total.ports.to_string(),
        "",
    );
    row(
        &mut main,
        "Host ports free",
        "ports-free",
        &free.ports.to_string(),
        "",
    );
    row(
        &mut main,
        "Queued tasks",
        "queue-depth",
        &status.queued.to_string(),
        "",
    );
    row(
        &mut main,
        "Running tasks",
        "running",
        &status.running.to_string(),
        "",
    );
    main.raw("</dl>\n").raw(concat!(
        "<p class=\"hint\">Running tasks hold resources from launch until their container has ",
        "stopped; queued tasks wait for enough free resources.</p>\n</section>\n"
    ));
    match &status.view {
        ClusterView::Local(local) => local_section(&mut main, local),
        ClusterView::Mesos(mesos) => mesos_section(&mut main, mesos),
    }
    document(site, PageKind::Cluster, "Cluster", &Html::new(), &main)
}

fn local_section(html: &mut Html, local: &LocalView) {
    html.raw("<section class=\"engine\">\n<h2>Docker engine</h2>\n<dl class=\"fields\">\n");
    let host = local
        .docker_host
        .as_deref()
        .unwrap_or("DOCKER_HOST or the local socket");
    row(html, "Endpoint", "docker-host", host, "");
    row(html, "Instance", "instance-id", &local.instance_id, "");
    let ports = format!("{}-{}", local.port_range[0], local.port_range[1]);
    row(html, "Port range", "port-range", &ports, "");
    if let Some(network) = &local.user_network {
        row(html, "User network", "user-network", network, "");
    }
    html.raw("</dl>\n</section>\n");
}

fn mesos_section(html: &mut Html, mesos: &MesosView) {
    html.raw("<section class=\"mesos\">\n<h2>Mesos</h2>\n<dl class=\"fields\">\n");
    row(html, "Master", "master", &mesos.master, "");
    if let Some(leader) = &mesos.leader {
        row(html, "Leading master", "leader", &leader.address, "");
        if let Some(hostname) = &leader.hostname {
            row(html, "Leader host name", "leader-hostname", hostname, "");
        }
    }
    let framework = mesos.framework_id.as_deref().unwrap_or("none yet");
    row(html, "Framework id", "framework-id", framework, "");
    let connection = &mesos.connection;
    row(
        html,
        "Connection",
        "connection",
        connection.state.as_str(),
        "",
    );
    row(
        html,
        "Since",
        "connection-since",
        &utc(connection.since),
        "",
    );
    if let Some(error) = &connection.last_error {
        row(html, "Last error", "last-error", error, "");
    }
    html.raw("</dl>\n<h3>Agents seen in offers</h3>\n<table id=\"agents\">\n<thead><tr>")
        .raw("<th>Agent</th><th>Host</th><th>Last offered</th><th>Attributes</th>")
        .raw("<th>Runs</th><th>Last offer</th></tr></thead>\n<tbody>\n");
    if mesos.agents.is_empty() {
        html.raw("<tr class=\"empty\"><td colspan=\"6\">No offer has arrived yet.</td></tr>\n");
    }
    for agent in &mesos.agents {
        html.raw("<tr data-agent-id=\"")
            .text(&agent.agent_id)
            .raw("\"><td>")
            .text(&agent.agent_id)
            .raw("</td><td>")
            .text(&agent.hostname)
            .raw("</td><td>")
            .text(values(&agent.resources))
            .raw("</td><td>")
            .text(values(&agent.attributes))
            .raw("</td><td class=\"runs\">")
            .text(agent.runs)
            .raw("</td><td>")
            .text(utc(agent.last_offer_at))
            .raw("</td></tr>\n");
    }
    html.raw("</tbody>\n</table>\n</section>\n");
}

/// `cpus: 4; mem: 4096; ports: [31000-32000]`.
fn values(values: &BTreeMap<String, MesosValue>) -> String {
    values
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Resources;

    #[test]
    fn cluster_page_shows_every_number_by_id() {
        let status = ClusterStatus {
            backend: "local <docker>".into(),
            total: Resources {
                cpus: 4.0,
                mem_mib: 2048.0,
                ports: 100,
            },
            free: Resources {
                cpus: 1.5,
                mem_mib: 512.0,
                ports: 97,
            },
            queued: 7,
            running: 3,
            view: ClusterView::Local(LocalView {
                docker_host: None,
                instance_id: "i-1".into(),
                port_range: [31000, 32000],
                user_network: None,
            }),
        };
        let page = render(
            Site {
                prefix: "",
                version: "x",
            },
            &status,
        );
        for needle in [
            "id=\"backend\">local &lt;docker&gt;<",
            "id=\"cpus-total\">4<",
            "id=\"cpus-free\">1.5<",
            "id=\"mem-total\">2048<",
            "id=\"mem-free\">512<",
            "id=\"ports-total\">100<",
            "id=\"ports-free\">97<",
            "id=\"queue-depth\">7<",
            "id=\"running\">3<",
            "id=\"instance-id\">i-1<",
            "id=\"port-range\">31000-32000<",
        ] {
            assert!(page.contains(needle), "missing {needle}");
        }
    }
}
