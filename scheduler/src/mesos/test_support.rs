//! Builders of offers and tasks for the unit tests of this module.

use std::collections::BTreeMap;

use mesos_proto::v1::{
    resource, value, AgentId, Attribute, DurationInfo, FrameworkId, Offer, OfferId, Resource,
    TimeInfo, Unavailability,
};
use time::OffsetDateTime;

use crate::task::{Network, NewTask, Task, TaskId};

pub(super) fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

pub(super) fn ports(ranges: &[(u64, u64)]) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: ranges
                .iter()
                .map(|&(begin, end)| value::Range { begin, end })
                .collect(),
        }),
        ..Default::default()
    }
}

pub(super) fn reserved(mut resource: Resource, role: &str) -> Resource {
    resource.reservations = vec![resource::ReservationInfo {
        r#type: Some(resource::reservation_info::Type::Static as i32),
        role: Some(role.into()),
        ..Default::default()
    }];
    resource
}

pub(super) fn text_attribute(name: &str, text: &str) -> Attribute {
    Attribute {
        name: name.into(),
        r#type: value::Type::Text as i32,
        text: Some(value::Text { value: text.into() }),
        ..Default::default()
    }
}

pub(super) fn scalar_attribute(name: &str, amount: f64) -> Attribute {
    Attribute {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

pub(super) fn offer(resources: Vec<Resource>) -> Offer {
    Offer {
        id: OfferId {
            value: "offer-1".into(),
        },
        framework_id: FrameworkId {
            value: "fw-1".into(),
        },
        agent_id: AgentId {
            value: "agent-1".into(),
        },
        hostname: "agent1.example".into(),
        resources,
        ..Default::default()
    }
}

pub(super) fn with_window(mut offer: Offer, start_secs: i64, duration_secs: Option<i64>) -> Offer {
    offer.unavailability = Some(Unavailability {
        start: TimeInfo {
            nanoseconds: start_secs * 1_000_000_000,
        },
        duration: duration_secs.map(|secs| DurationInfo {
            nanoseconds: secs * 1_000_000_000,
        }),
    });
    offer
}

pub(super) fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("valid timestamp")
}

pub(super) fn request(cpu: f64, mem: f64) -> NewTask {
    NewTask {
        name: None,
        image: "busybox:latest".into(),
        command: None,
        args: Vec::new(),
        cpu,
        mem,
        env: BTreeMap::new(),
        masked_env: BTreeMap::new(),
        labels: BTreeMap::new(),
        volumes: Vec::new(),
        volumes_from: Vec::new(),
        ports: Vec::new(),
        network: Network::Bridge,
        dns: None,
        agent_constraints: Vec::new(),
        callback_uri: None,
        callback_states: None,
        fetch: Vec::new(),
        uris_count: 0,
        force_pull_image: false,
        privileged: false,
        user: None,
        timeout_secs: None,
        retries: None,
    }
}

pub(super) fn task(request: NewTask) -> Task {
    let id = TaskId::parse("eremetic-task.0b0c0d0e-0000-4000-8000-000000000001").expect("id");
    Task::new(id, "job".into(), request, at(1_700_000_000))
}
