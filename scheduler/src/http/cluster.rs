//! `GET /cluster` for API clients: the cluster overview as JSON. Browsers (`Accept` naming
//! `text/html`) get the UI's cluster page from the same route instead.
//!
//! `{"backend": "local"|"mesos", "total": {...}, "free": {...}, "queued": n, "running": n,
//! "local": {...}}` or `..., "mesos": {...}}`: the backend's own part under its name
//! ([`crate::backend::view`]).

use serde_json::{json, Map, Value};

use crate::backend::Resources;
use crate::service::ClusterStatus;

fn resources(resources: &Resources) -> Value {
    json!({
        "cpus": resources.cpus,
        "mem_mib": resources.mem_mib,
        "ports": resources.ports,
    })
}

/// The JSON document of the overview.
pub(crate) fn document(status: &ClusterStatus) -> Value {
    let mut document = Map::new();
    document.insert("backend".into(), json!(status.view.backend()));
    document.insert("total".into(), resources(&status.total));
    document.insert("free".into(), resources(&status.free));
    document.insert("queued".into(), json!(status.queued));
    document.insert("running".into(), json!(status.running));
    // The view serializes as {"<backend>": {...}}: its one member joins the document.
    if let Ok(Value::Object(view)) = serde_json::to_value(&status.view) {
        document.extend(view);
    }
    Value::Object(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::view::{ClusterView, LocalView};

    #[test]
    fn the_backend_part_sits_under_the_backend_name() {
        let free = Resources {
            cpus: 1.0,
            mem_mib: 2.0,
            ports: 3,
        };
        let status = ClusterStatus {
            backend: "local".into(),
            total: free,
            free,
            queued: 4,
            running: 5,
            view: ClusterView::Local(LocalView {
                docker_host: Some("unix:///d.sock".into()),
                instance_id: "i".into(),
                port_range: [1, 2],
                user_network: None,
            }),
        };
        let document = document(&status);
        assert_eq!(document["backend"], "local");
        assert_eq!(document["free"]["ports"], 3);
        assert_eq!(document["local"]["docker_host"], "unix:///d.sock");
        assert_eq!(document["local"]["port_range"], json!([1, 2]));
        assert!(document.get("mesos").is_none());
    }
}
