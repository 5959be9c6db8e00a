use super::*;
use crate::mesos::test_support::*;
use crate::task::{PortProtocol, PortRequest};

fn with_ports(mut request: NewTask, count: usize) -> NewTask {
    request.ports = (0..count)
        .map(|index| PortRequest {
            container_port: 8000 + u16::try_from(index).expect("small"),
            protocol: PortProtocol::Tcp,
        })
        .collect();
    request
}

fn ranges_of(resource: &Resource) -> Vec<(u64, u64)> {
    resource
        .ranges
        .as_ref()
        .map(|ranges| ranges.range.iter().map(|r| (r.begin, r.end)).collect())
        .unwrap_or_default()
}

fn named<'a>(claim: &'a Claim, name: &str) -> Vec<&'a Resource> {
    claim.resources.iter().filter(|r| r.name == name).collect()
}

#[test]
fn scalars_are_summed_over_every_usable_resource() {
    let offer = offer(vec![
        scalar("cpus", 0.5),
        reserved(scalar("cpus", 1.0), "eremetic"),
        scalar("mem", 64.0),
        reserved(scalar("mem", 128.0), "eremetic"),
    ]);
    let free = Leftovers::new(&offer, "eremetic").free();
    assert_eq!((free.cpus, free.mem_mib), (1.5, 192.0));
}

#[test]
#[allow(deprecated)] // the pre-refinement `role` field is what older masters send
fn resources_of_other_roles_revocable_or_shared_are_not_usable() {
    let mut revocable = scalar("cpus", 4.0);
    revocable.revocable = Some(Default::default());
    let mut shared = scalar("mem", 512.0);
    shared.shared = Some(Default::default());
    let mut legacy_reserved = scalar("mem", 256.0);
    legacy_reserved.role = Some("other".into());
    let offer = offer(vec![
        scalar("cpus", 1.0),
        reserved(scalar("cpus", 8.0), "other"),
        revocable,
        shared,
        legacy_reserved,
        scalar("mem", 32.0),
    ]);
    let free = Leftovers::new(&offer, "eremetic").free();
    assert_eq!((free.cpus, free.mem_mib), (1.0, 32.0));
}

#[test]
fn claim_takes_reserved_resources_before_unreserved_ones() {
    let offer = offer(vec![
        scalar("cpus", 2.0),
        reserved(scalar("cpus", 0.5), "eremetic"),
        scalar("mem", 256.0),
    ]);
    let mut leftovers = Leftovers::new(&offer, "eremetic");
    let claim = leftovers.claim(&request(1.0, 100.0), at(0)).expect("fits");
    let cpus = named(&claim, "cpus");
    assert_eq!(cpus.len(), 2);
    assert_eq!(reservation_role(cpus[0]), "eremetic");
    assert_eq!(cpus[0].scalar.as_ref().map(|s| s.value), Some(0.5));
    assert_eq!(reservation_role(cpus[1]), "*");
    assert_eq!(cpus[1].scalar.as_ref().map(|s| s.value), Some(0.5));
    assert_eq!(leftovers.free().cpus, 1.5);
    assert_eq!(leftovers.free().mem_mib, 156.0);
}

#[test]
fn too_few_cpus_memory_or_ports_is_a_mismatch_naming_the_amounts() {
    let offer = offer(vec![
        scalar("cpus", 0.5),
        scalar("mem", 64.0),
        ports(&[(31000, 31000)]),
    ]);
    let leftovers = Leftovers::new(&offer, "*");
    assert_eq!(
        leftovers.check(&request(1.0, 32.0), at(0)),
        Err(Mismatch::Cpus {
            offered: 0.5,
            needed: 1.0
        })
    );
    assert_eq!(
        leftovers.check(&request(0.5, 65.0), at(0)),
        Err(Mismatch::Mem {
            offered: 64.0,
            needed: 65.0
        })
    );
    let mismatch = leftovers
        .check(&with_ports(request(0.1, 32.0), 2), at(0))
        .expect_err("two ports");
    assert_eq!(
        mismatch,
        Mismatch::Ports {
            offered: 1,
            needed: 2
        }
    );
    assert_eq!(mismatch.to_string(), "needs 2 ports, offer has 1");
}

#[test]
fn scalar_arithmetic_does_not_drift() {
    let offer = offer(vec![scalar("cpus", 0.3), scalar("mem", 96.0)]);
    let mut leftovers = Leftovers::new(&offer, "*");
    for _ in 0..3 {
        leftovers.claim(&request(0.1, 32.0), at(0)).expect("fits");
    }
    assert_eq!(leftovers.free().cpus, 0.0);
    assert!(leftovers.claim(&request(0.1, 1.0), at(0)).is_err());
}

#[test]
fn ports_are_chosen_ascending_in_request_order_and_claimed_exactly() {
    let offer = offer(vec![
        scalar("cpus", 1.0),
        scalar("mem", 128.0),
        ports(&[(31005, 31006), (31000, 31000), (31010, 31020)]),
    ]);
    let mut leftovers = Leftovers::new(&offer, "*");
    let claim = leftovers
        .claim(&with_ports(request(0.1, 32.0), 4), at(0))
        .expect("fits");
    assert_eq!(claim.host_ports, vec![31000, 31005, 31006, 31010]);
    let claimed = named(&claim, "ports");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        ranges_of(claimed[0]),
        vec![(31000, 31000), (31005, 31006), (31010, 31010)]
    );
    assert_eq!(leftovers.free_ports(), vec![(31011, 31020)]);
}

#[test]
fn overlapping_and_out_of_range_port_ranges_are_normalized() {
    let offer = offer(vec![ports(&[(10, 12), (11, 14), (15, 15), (65535, 70000)])]);
    let leftovers = Leftovers::new(&offer, "*");
    assert_eq!(leftovers.free_ports(), vec![(10, 15), (65535, 65535)]);
    assert_eq!(leftovers.free().ports, 7);
}

#[test]
fn no_ports_requested_claims_no_ports_resource() {
    let offer = offer(vec![
        scalar("cpus", 1.0),
        scalar("mem", 128.0),
        ports(&[(31000, 31010)]),
    ]);
    let claim = Leftovers::new(&offer, "*")
        .claim(&request(0.1, 32.0), at(0))
        .expect("fits");
    assert!(named(&claim, "ports").is_empty());
    assert!(claim.host_ports.is_empty());
    assert_eq!(
        (claim.offer_id.as_str(), claim.agent_id.as_str()),
        ("offer-1", "agent-1")
    );
}

#[test]
fn text_and_scalar_constraints_match_any_attribute_of_the_name() {
    let mut offer = offer(vec![scalar("cpus", 1.0), scalar("mem", 128.0)]);
    offer.attributes = vec![
        text_attribute("rack", "r1"),
        text_attribute("rack", "r2"),
        scalar_attribute("gen", 3.0),
    ];
    let leftovers = Leftovers::new(&offer, "*");
    let constrained = |pairs: &[(&str, &str)]| {
        let mut request = request(0.1, 32.0);
        request.agent_constraints = pairs
            .iter()
            .map(|(name, value)| AgentConstraint {
                attribute_name: (*name).into(),
                attribute_value: (*value).into(),
            })
            .collect();
        leftovers.check(&request, at(0))
    };
    assert_eq!(constrained(&[("rack", "r2"), ("gen", "3")]), Ok(()));
    assert_eq!(constrained(&[("gen", "3.000")]), Ok(()));
    assert_eq!(
        constrained(&[("rack", "R2")]),
        Err(Mismatch::Constraint {
            name: "rack".into(),
            value: "R2".into()
        })
    );
    assert!(constrained(&[("gen", "three")]).is_err());
    assert!(constrained(&[("zone", "a")]).is_err());
}

#[test]
fn set_and_ranges_attributes_never_satisfy_a_constraint() {
    let attribute = Attribute {
        name: "zone".into(),
        r#type: value::Type::Set as i32,
        set: Some(value::Set {
            item: vec!["a".into()],
        }),
        ..Default::default()
    };
    let constraint = AgentConstraint {
        attribute_name: "zone".into(),
        attribute_value: "a".into(),
    };
    assert!(!satisfies(&[attribute], &constraint));
}

#[test]
fn started_maintenance_windows_reject_and_future_ones_do_not() {
    let base = offer(vec![scalar("cpus", 1.0), scalar("mem", 128.0)]);
    let task = request(0.1, 32.0);
    let check = |offer: Offer, now: i64| Leftovers::new(&offer, "*").check(&task, at(now));
    assert_eq!(
        check(with_window(base.clone(), 100, None), 150),
        Err(Mismatch::Unavailable)
    );
    assert_eq!(
        check(with_window(base.clone(), 100, Some(60)), 160),
        Err(Mismatch::Unavailable)
    );
    assert_eq!(check(with_window(base.clone(), 100, Some(60)), 161), Ok(()));
    assert_eq!(check(with_window(base.clone(), 100, None), 99), Ok(()));
    assert_eq!(check(base, 0), Ok(()));
}

#[test]
fn pack_fits_several_tasks_and_skips_those_that_do_not_fit() {
    let offer = offer(vec![
        scalar("cpus", 1.0),
        scalar("mem", 256.0),
        ports(&[(31000, 31002)]),
    ]);
    let mut leftovers = Leftovers::new(&offer, "*");
    let first = with_ports(request(0.5, 100.0), 2);
    let too_big = request(4.0, 10.0);
    let second = with_ports(request(0.25, 100.0), 1);
    let third = request(0.5, 10.0);
    let placed = leftovers.pack(&[&first, &too_big, &second, &third], at(0));
    let indices: Vec<usize> = placed.iter().map(|(index, _)| *index).collect();
    assert_eq!(indices, vec![0, 2]);
    assert_eq!(placed[0].1.host_ports, vec![31000, 31001]);
    assert_eq!(placed[1].1.host_ports, vec![31002]);
    assert_eq!(leftovers.free().cpus, 0.25);
}

#[test]
fn place_uses_later_offers_and_reports_unused_ones() {
    let small = offer(vec![scalar("cpus", 0.1), scalar("mem", 32.0)]);
    let mut big = offer(vec![scalar("cpus", 4.0), scalar("mem", 4096.0)]);
    big.id.value = "offer-2".into();
    let mut idle = offer(vec![scalar("cpus", 4.0), scalar("mem", 4096.0)]);
    idle.id.value = "offer-3".into();
    let mut offers = vec![
        Leftovers::new(&small, "*"),
        Leftovers::new(&big, "*"),
        Leftovers::new(&idle, "*"),
    ];
    let unschedulable = request(64.0, 32.0);
    let fits_big = request(1.0, 1024.0);
    let placed = place(&mut offers, &[&unschedulable, &fits_big], at(0));
    assert_eq!(placed.len(), 1);
    assert_eq!((placed[0].task, placed[0].offer), (1, 1));
    let unused: Vec<String> = unused_offers(&offers, &placed)
        .into_iter()
        .map(|id| id.value)
        .collect();
    assert_eq!(unused, vec!["offer-1".to_owned(), "offer-3".to_owned()]);
}
