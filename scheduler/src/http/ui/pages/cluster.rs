//! The cluster page: which backend runs the tasks, its capacity and what is free, the queue.

use super::layout::{document, PageKind, Site};
use crate::http::ui::format::number;
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
    document(site, PageKind::Cluster, "Cluster", &Html::new(), &main)
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
        ] {
            assert!(page.contains(needle), "missing {needle}");
        }
    }
}
