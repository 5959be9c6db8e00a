//! Resource accounting of one host: cpus, memory and a range of host ports. Pure.
//!
//! Amounts are kept as integers (milli-CPUs and whole MiB) so that adding and removing many
//! fractional allocations never drifts: the same allocation always converts to the same
//! integers, so a release gives back exactly what the placement took.

use std::collections::BTreeSet;

use super::{Allocation, Reservation, Resources};

/// CPUs as whole milli-CPUs, rounded up (a positive amount is at least 1).
pub fn milli_cpus(cpus: f64) -> u64 {
    to_units(cpus * 1000.0)
}

/// Memory as whole MiB, rounded up (a positive amount is at least 1).
pub fn whole_mib(mem_mib: f64) -> u64 {
    to_units(mem_mib)
}

/// Rounds up, ignoring the floating-point noise of decimal fractions (`0.1 * 1000.0` is
/// `100.00000000000001`, which must count as 100). Non-positive and NaN amounts are 0.
fn to_units(amount: f64) -> u64 {
    if amount.is_nan() || amount <= 0.0 {
        return 0;
    }
    // `as` saturates at u64::MAX for huge values.
    ((amount - 1e-6).ceil() as u64).max(1)
}

/// The capacity of one host and what is reserved of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    total_milli_cpus: u64,
    total_mem_mib: u64,
    port_range: (u16, u16),
    used_milli_cpus: u64,
    used_mem_mib: u64,
    used_ports: BTreeSet<u16>,
}

impl Capacity {
    /// A host with `cpus` CPUs, `mem_mib` MiB and the host ports `port_range` (inclusive;
    /// a range whose start is after its end holds no port). Fractions of the totals that do
    /// not make a whole milli-CPU or MiB are not used.
    pub fn new(cpus: f64, mem_mib: f64, port_range: (u16, u16)) -> Capacity {
        Capacity {
            total_milli_cpus: floor_units(cpus * 1000.0),
            total_mem_mib: floor_units(mem_mib),
            port_range,
            used_milli_cpus: 0,
            used_mem_mib: 0,
            used_ports: BTreeSet::new(),
        }
    }

    /// Total CPUs.
    pub fn total_cpus(&self) -> f64 {
        self.total_milli_cpus as f64 / 1000.0
    }

    /// Total memory in MiB.
    pub fn total_mem_mib(&self) -> f64 {
        self.total_mem_mib as f64
    }

    /// Number of ports in the range.
    pub fn total_ports(&self) -> usize {
        let (first, last) = self.port_range;
        if first > last {
            0
        } else {
            usize::from(last - first) + 1
        }
    }

    /// The host port range (inclusive).
    pub fn port_range(&self) -> (u16, u16) {
        self.port_range
    }

    /// Why `needs` could never be placed, even on an idle host: one message per resource
    /// that exceeds the total. Empty when it could.
    pub fn exceeded(&self, needs: &Resources) -> Vec<String> {
        let mut problems = Vec::new();
        if milli_cpus(needs.cpus) > self.total_milli_cpus {
            problems.push(format!(
                "cpu: {} CPUs requested, but this host offers at most {}",
                needs.cpus,
                self.total_cpus()
            ));
        }
        if whole_mib(needs.mem_mib) > self.total_mem_mib {
            problems.push(format!(
                "mem: {} MiB requested, but this host offers at most {} MiB",
                needs.mem_mib, self.total_mem_mib
            ));
        }
        if needs.ports > self.total_ports() {
            let (first, last) = self.port_range;
            problems.push(format!(
                "ports: {} ports requested, but the host port range {first}-{last} has {}",
                needs.ports,
                self.total_ports()
            ));
        }
        problems
    }

    /// What is free now (ports of the range not handed out).
    pub fn free(&self) -> Resources {
        Resources {
            cpus: self.total_milli_cpus.saturating_sub(self.used_milli_cpus) as f64 / 1000.0,
            mem_mib: self.total_mem_mib.saturating_sub(self.used_mem_mib) as f64,
            ports: self.free_ports().count(),
        }
    }

    /// Reserves `needs` if they are free now; host ports are the lowest free ones of the
    /// range, in ascending order.
    pub fn place(&mut self, needs: &Resources) -> Reservation {
        self.place_with(needs, |_| true)
    }

    /// As [`Capacity::place`], skipping host ports for which `usable` says no (a port that
    /// something outside this accounting holds: another service, another scheduler instance).
    pub fn place_with(&mut self, needs: &Resources, usable: impl Fn(u16) -> bool) -> Reservation {
        let cpus = milli_cpus(needs.cpus);
        let mem = whole_mib(needs.mem_mib);
        let fits = self.used_milli_cpus.saturating_add(cpus) <= self.total_milli_cpus
            && self.used_mem_mib.saturating_add(mem) <= self.total_mem_mib;
        if !fits {
            return Reservation::Wait;
        }
        let host_ports: Vec<u16> = self
            .free_ports()
            .filter(|port| usable(*port))
            .take(needs.ports)
            .collect();
        if host_ports.len() < needs.ports {
            return Reservation::Wait;
        }
        self.used_milli_cpus += cpus;
        self.used_mem_mib += mem;
        self.used_ports.extend(host_ports.iter().copied());
        Reservation::Reserved(Allocation {
            cpus: needs.cpus,
            mem_mib: needs.mem_mib,
            host_ports,
        })
    }

    /// Marks an allocation found again after a restart as used, even if that over-commits
    /// (the containers exist whatever the accounting says) or its ports are outside the range
    /// (the range may have been reconfigured).
    pub fn adopt(&mut self, allocation: &Allocation) {
        self.used_milli_cpus = self
            .used_milli_cpus
            .saturating_add(milli_cpus(allocation.cpus));
        self.used_mem_mib = self
            .used_mem_mib
            .saturating_add(whole_mib(allocation.mem_mib));
        self.used_ports
            .extend(allocation.host_ports.iter().copied());
    }

    /// Gives back an allocation. Never goes below zero, so a double release cannot create
    /// capacity out of nothing (it can free ports handed out again since, which is why each
    /// allocation must be released once).
    pub fn release(&mut self, allocation: &Allocation) {
        self.used_milli_cpus = self
            .used_milli_cpus
            .saturating_sub(milli_cpus(allocation.cpus));
        self.used_mem_mib = self
            .used_mem_mib
            .saturating_sub(whole_mib(allocation.mem_mib));
        for port in &allocation.host_ports {
            self.used_ports.remove(port);
        }
    }

    fn free_ports(&self) -> impl Iterator<Item = u16> + '_ {
        let (first, last) = self.port_range;
        (first..=last).filter(|port| !self.used_ports.contains(port))
    }
}

/// Rounds a total down to whole units (NaN and negative totals are 0).
fn floor_units(amount: f64) -> u64 {
    if amount.is_nan() || amount <= 0.0 {
        0
    } else {
        (amount + 1e-6).floor() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(cpus: f64, mem_mib: f64, ports: usize) -> Resources {
        Resources {
            cpus,
            mem_mib,
            ports,
        }
    }

    fn placed(placement: Reservation) -> Allocation {
        match placement {
            Reservation::Reserved(allocation) => allocation,
            Reservation::Wait => panic!("expected a placement"),
        }
    }

    #[test]
    fn decimal_fractions_convert_without_noise() {
        assert_eq!(milli_cpus(0.1), 100);
        assert_eq!(milli_cpus(0.3), 300);
        assert_eq!(milli_cpus(0.0001), 1);
        assert_eq!(milli_cpus(0.0), 0);
        assert_eq!(milli_cpus(f64::NAN), 0);
        assert_eq!(whole_mib(32.0), 32);
        assert_eq!(whole_mib(32.5), 33);
    }

    #[test]
    fn placement_never_over_commits_cpus_or_memory() {
        let mut capacity = Capacity::new(1.0, 100.0, (31000, 31010));
        placed(capacity.place(&needs(0.6, 10.0, 0)));
        assert_eq!(capacity.place(&needs(0.5, 10.0, 0)), Reservation::Wait);
        placed(capacity.place(&needs(0.4, 10.0, 0)));
        assert_eq!(capacity.place(&needs(0.001, 1.0, 0)), Reservation::Wait);
        let mut capacity = Capacity::new(4.0, 100.0, (31000, 31010));
        placed(capacity.place(&needs(0.1, 60.0, 0)));
        assert_eq!(capacity.place(&needs(0.1, 41.0, 0)), Reservation::Wait);
        assert_eq!(capacity.free(), needs(3.9, 40.0, 11));
    }

    #[test]
    fn ports_held_outside_the_accounting_are_skipped() {
        let mut capacity = Capacity::new(4.0, 1024.0, (31000, 31003));
        let Reservation::Reserved(placed) =
            capacity.place_with(&needs(1.0, 1.0, 2), |port| port != 31000)
        else {
            panic!("two usable ports are free");
        };
        assert_eq!(placed.host_ports, vec![31001, 31002]);
        assert_eq!(
            capacity.place_with(&needs(1.0, 1.0, 2), |port| port != 31003),
            Reservation::Wait
        );
    }

    #[test]
    fn ports_are_the_lowest_free_and_never_handed_out_twice() {
        let mut capacity = Capacity::new(8.0, 1000.0, (31000, 31004));
        let first = placed(capacity.place(&needs(0.1, 1.0, 2)));
        assert_eq!(first.host_ports, vec![31000, 31001]);
        let second = placed(capacity.place(&needs(0.1, 1.0, 2)));
        assert_eq!(second.host_ports, vec![31002, 31003]);
        assert_eq!(capacity.place(&needs(0.1, 1.0, 2)), Reservation::Wait);
        let third = placed(capacity.place(&needs(0.1, 1.0, 1)));
        assert_eq!(third.host_ports, vec![31004]);
        assert_eq!(capacity.free().ports, 0);
    }

    #[test]
    fn released_resources_and_ports_are_reusable() {
        let mut capacity = Capacity::new(1.0, 100.0, (31000, 31002));
        let first = placed(capacity.place(&needs(0.5, 50.0, 2)));
        let second = placed(capacity.place(&needs(0.5, 50.0, 1)));
        assert_eq!(second.host_ports, vec![31002]);
        capacity.release(&first);
        let again = placed(capacity.place(&needs(0.5, 50.0, 2)));
        assert_eq!(again.host_ports, vec![31000, 31001]);
    }

    #[test]
    fn many_fractional_placements_and_releases_do_not_drift() {
        let mut capacity = Capacity::new(1.0, 1000.0, (1, 0));
        for _ in 0..1000 {
            let allocations: Vec<Allocation> = (0..10)
                .map(|_| placed(capacity.place(&needs(0.1, 0.1, 0))))
                .collect();
            assert_eq!(capacity.place(&needs(0.001, 0.0, 0)), Reservation::Wait);
            for allocation in &allocations {
                capacity.release(allocation);
            }
        }
        assert_eq!(capacity.free(), needs(1.0, 1000.0, 0));
    }

    #[test]
    fn adopted_runs_count_as_used_even_beyond_the_range() {
        let mut capacity = Capacity::new(2.0, 100.0, (31000, 31001));
        let recovered = Allocation {
            cpus: 1.5,
            mem_mib: 90.0,
            host_ports: vec![31000, 40000],
        };
        capacity.adopt(&recovered);
        assert_eq!(capacity.free(), needs(0.5, 10.0, 1));
        assert_eq!(capacity.place(&needs(0.5, 20.0, 0)), Reservation::Wait);
        let next = placed(capacity.place(&needs(0.5, 10.0, 1)));
        assert_eq!(next.host_ports, vec![31001]);
        capacity.release(&recovered);
        capacity.release(&next);
        assert_eq!(capacity.free(), needs(2.0, 100.0, 2));
    }

    #[test]
    fn double_release_does_not_create_capacity() {
        let mut capacity = Capacity::new(1.0, 10.0, (5, 5));
        let allocation = placed(capacity.place(&needs(1.0, 10.0, 1)));
        capacity.release(&allocation);
        capacity.release(&allocation);
        assert_eq!(capacity.free(), needs(1.0, 10.0, 1));
    }

    #[test]
    fn exceeded_names_every_resource_beyond_the_totals() {
        let capacity = Capacity::new(2.0, 512.0, (31000, 31001));
        assert!(capacity.exceeded(&needs(2.0, 512.0, 2)).is_empty());
        let problems = capacity.exceeded(&needs(2.5, 513.0, 3));
        assert_eq!(
            problems,
            vec![
                "cpu: 2.5 CPUs requested, but this host offers at most 2".to_owned(),
                "mem: 513 MiB requested, but this host offers at most 512 MiB".to_owned(),
                "ports: 3 ports requested, but the host port range 31000-31001 has 2".to_owned(),
            ]
        );
    }

    #[test]
    fn inverted_port_range_holds_no_port() {
        let capacity = Capacity::new(1.0, 1.0, (10, 9));
        assert_eq!(capacity.total_ports(), 0);
        assert_eq!(capacity.free().ports, 0);
        let full = Capacity::new(1.0, 1.0, (0, u16::MAX));
        assert_eq!(full.total_ports(), 65536);
    }
}
