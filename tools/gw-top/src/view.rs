//! From two samples of the devices to per-client rates and totals, and how they are shown.

use crate::history::{self, History};
use crate::tc::{Class, ClientFilter, Link, Prefix};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write;

/// Which way a device's traffic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Towards the clients: they are the destinations.
    Down,
    /// From the clients: they are the sources.
    Up,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Down => "down",
            Role::Up => "up",
        }
    }
}

/// What was read from one device at one moment.
#[derive(Debug, Clone)]
pub struct DevSample {
    pub dev: String,
    /// Seconds on a monotonic clock when the classes were read.
    pub at: f64,
    /// Likewise for the link counters.
    pub link_at: f64,
    pub classes: Vec<Class>,
    pub filters: Vec<ClientFilter>,
    pub link: Link,
}

/// Both devices at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub down: Option<DevSample>,
    pub up: Option<DevSample>,
}

impl Snapshot {
    fn get(&self, role: Role) -> Option<&DevSample> {
        match role {
            Role::Down => self.down.as_ref(),
            Role::Up => self.up.as_ref(),
        }
    }
}

/// One line of the view: a client (the addresses whose filters lead to the same classes), or a
/// class no address filter leads to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// Empty for a class without an address filter.
    pub addresses: Vec<Prefix>,
    /// The first address, or "DEV:CLASS" for a class without an address.
    pub label: String,
    pub down_classes: Vec<String>,
    pub up_classes: Vec<String>,
    /// Bits per second over the last interval.
    pub down_bps: f64,
    pub up_bps: f64,
    pub down_bytes: u64,
    pub up_bytes: u64,
    pub down_packets: u64,
    pub up_packets: u64,
    pub down_drops: u64,
    pub up_drops: u64,
}

/// A device's own counters and rates.
#[derive(Debug, Clone, PartialEq)]
pub struct DevRow {
    pub dev: String,
    pub role: Role,
    pub link: Link,
    /// Into the qdisc, bits per second.
    pub rx_bps: f64,
    /// Out of the qdisc, bits per second.
    pub tx_bps: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub rows: Vec<Row>,
    pub devices: Vec<DevRow>,
}

/// Bits per second from two readings of a byte counter `dt` seconds apart. A counter that went
/// back (the class or qdisc was replaced) counts from zero.
fn rate(prev: Option<u64>, cur: u64, dt: f64) -> f64 {
    if dt <= 0.0 {
        return 0.0;
    }
    let delta = match prev {
        Some(p) if p <= cur => cur - p,
        _ => cur,
    };
    delta as f64 * 8.0 / dt
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(Prefix),
    Class(Role, String),
}

/// Union-find over addresses and classes.
#[derive(Default)]
struct Groups {
    index: HashMap<Key, usize>,
    parent: Vec<usize>,
}

impl Groups {
    fn id(&mut self, k: Key) -> usize {
        let n = self.parent.len();
        let i = *self.index.entry(k).or_insert(n);
        if i == n {
            self.parent.push(n);
        }
        i
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[a.max(b)] = a.min(b);
        }
    }
}

/// The view of `cur`, rates against `prev`.
pub fn report(prev: &Snapshot, cur: &Snapshot) -> Report {
    let mut out = Report::default();
    let mut groups = Groups::default();
    // Classes counted in some row: (role, handle) -> (class, rate).
    let mut counted: Vec<(Role, &Class, f64)> = Vec::new();
    let mut unmapped: Vec<(Role, &str, &Class, f64)> = Vec::new();

    for role in [Role::Down, Role::Up] {
        let Some(s) = cur.get(role) else { continue };
        let p = prev.get(role).filter(|p| p.dev == s.dev);
        let dt = p.map_or(0.0, |p| s.at - p.at);
        let prev_bytes: HashMap<&str, u64> = p
            .map(|p| {
                p.classes
                    .iter()
                    .map(|c| (c.handle.as_str(), c.bytes))
                    .collect()
            })
            .unwrap_or_default();
        let class_rate = |c: &Class| {
            if p.is_none() {
                0.0
            } else {
                rate(prev_bytes.get(c.handle.as_str()).copied(), c.bytes, dt)
            }
        };
        let by_handle: HashMap<&str, &Class> =
            s.classes.iter().map(|c| (c.handle.as_str(), c)).collect();
        let inner: HashSet<&str> = s
            .classes
            .iter()
            .filter_map(|c| c.parent.as_deref())
            .collect();
        let mut mapped: HashSet<&str> = HashSet::new();
        for f in &s.filters {
            if !by_handle.contains_key(f.flowid.as_str()) {
                continue;
            }
            let a = groups.id(Key::Addr(f.prefix));
            let c = groups.id(Key::Class(role, f.flowid.clone()));
            groups.union(a, c);
            mapped.insert(f.flowid.as_str());
        }
        for c in &s.classes {
            if mapped.contains(c.handle.as_str()) {
                counted.push((role, c, class_rate(c)));
            } else if !inner.contains(c.handle.as_str()) {
                // A leaf without an address; not shown if a class above it has one (its
                // traffic is counted there).
                let mut up = c.parent.as_deref();
                let mut covered = false;
                let mut hops = 0;
                while let Some(h) = up {
                    if mapped.contains(h) || hops > 64 {
                        covered = true;
                        break;
                    }
                    up = by_handle.get(h).and_then(|c| c.parent.as_deref());
                    hops += 1;
                }
                if !covered {
                    unmapped.push((role, s.dev.as_str(), c, class_rate(c)));
                }
            }
        }
        let (lp, ldt) = match p {
            Some(p) => (Some(p.link), s.link_at - p.link_at),
            None => (None, 0.0),
        };
        out.devices.push(DevRow {
            dev: s.dev.clone(),
            role,
            link: s.link,
            rx_bps: lp.map_or(0.0, |l| rate(Some(l.rx_bytes), s.link.rx_bytes, ldt)),
            tx_bps: lp.map_or(0.0, |l| rate(Some(l.tx_bytes), s.link.tx_bytes, ldt)),
        });
    }

    // Rows of the address groups, by the group's root.
    let mut rows: HashMap<usize, Row> = HashMap::new();
    let keys: Vec<Key> = groups.index.keys().cloned().collect();
    for k in keys {
        if let Key::Addr(a) = k {
            let i = groups.id(Key::Addr(a));
            let root = groups.find(i);
            rows.entry(root).or_default().addresses.push(a);
        }
    }
    for (role, c, bps) in counted {
        let i = groups.id(Key::Class(role, c.handle.clone()));
        let root = groups.find(i);
        let row = rows.entry(root).or_default();
        add(row, role, c, bps);
    }
    let mut rows: Vec<Row> = rows.into_values().collect();
    for r in &mut rows {
        r.addresses = r
            .addresses
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        r.label = r
            .addresses
            .first()
            .map(Prefix::to_string)
            .unwrap_or_default();
    }
    for (role, dev, c, bps) in unmapped {
        let mut row = Row {
            label: format!("{dev}:{}", c.handle),
            ..Row::default()
        };
        add(&mut row, role, c, bps);
        rows.push(row);
    }
    rows.sort_by(|a, b| {
        (b.down_bps + b.up_bps)
            .total_cmp(&(a.down_bps + a.up_bps))
            .then(a.addresses.is_empty().cmp(&b.addresses.is_empty()))
            .then(a.addresses.cmp(&b.addresses))
            .then(a.label.cmp(&b.label))
    });
    out.rows = rows;
    out
}

fn add(row: &mut Row, role: Role, c: &Class, bps: f64) {
    let (classes, rate, bytes, packets, drops) = match role {
        Role::Down => (
            &mut row.down_classes,
            &mut row.down_bps,
            &mut row.down_bytes,
            &mut row.down_packets,
            &mut row.down_drops,
        ),
        Role::Up => (
            &mut row.up_classes,
            &mut row.up_bps,
            &mut row.up_bytes,
            &mut row.up_packets,
            &mut row.up_drops,
        ),
    };
    classes.push(c.handle.clone());
    classes.sort();
    *rate += bps;
    *bytes += c.bytes;
    *packets += c.packets;
    *drops += c.drops;
}

/// Bits per second, in SI units: "950", "1.02k", "2.00M".
pub fn human_bps(bps: f64) -> String {
    human(bps, "")
}

/// Bytes, in SI units: "1.23MB".
pub fn human_bytes(b: u64) -> String {
    human(b as f64, "B")
}

fn human(v: f64, unit: &str) -> String {
    for (scale, p) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if v >= scale {
            let x = v / scale;
            return if x >= 100.0 {
                format!("{x:.0}{p}{unit}")
            } else if x >= 10.0 {
                format!("{x:.1}{p}{unit}")
            } else {
                format!("{x:.2}{p}{unit}")
            };
        }
    }
    format!("{v:.0}{unit}")
}

/// The table: a header with the devices, then one line per row as sorted. With `spark` (the
/// history and the time of this reading; on a terminal) each rate has its last minute drawn
/// beside it, all rows of a direction to one scale, the peak named in the header.
pub fn table(r: &Report, when: &str, interval: f64, spark: Option<(&History, f64)>) -> String {
    let mut s = format!("gw-top  {when}  every {interval}s\n");
    for d in &r.devices {
        let _ = writeln!(
            s,
            "  {:<6} {:<4}  in {:>7}bit/s  out {:>7}bit/s  total in {:>8}  out {:>8}  dropped {}",
            d.dev,
            d.role.name(),
            human_bps(d.rx_bps),
            human_bps(d.tx_bps),
            human_bytes(d.link.rx_bytes),
            human_bytes(d.link.tx_bytes),
            d.link.dropped,
        );
    }
    // Each row's cells, down and up, and each direction's peak.
    let cells: Vec<[Vec<Option<f64>>; 2]> = match spark {
        Some((h, now)) => r
            .rows
            .iter()
            .map(|row| match h.get(&row.label) {
                Some((d, u)) => [d.cells(now, history::WIDTH), u.cells(now, history::WIDTH)],
                None => [vec![None; history::WIDTH], vec![None; history::WIDTH]],
            })
            .collect(),
        None => Vec::new(),
    };
    let top = [0, 1].map(|i| history::peak(cells.iter().map(|c| c[i].as_slice())));
    let head = |i: usize| {
        if spark.is_some() {
            let t = format!("60s █={}", human_bps(top[i]));
            format!(" {t:<w$}", w = history::WIDTH)
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        s,
        "\n{:<28} {:>10}{} {:>10}{} {:>10} {:>10} {:>7}  CLASSES (down/up)",
        "CLIENT",
        "DOWN bit/s",
        head(0),
        "UP bit/s",
        head(1),
        "DOWN",
        "UP",
        "DROPS"
    );
    for (n, row) in r.rows.iter().enumerate() {
        let mut label = row.label.clone();
        if row.addresses.len() > 1 {
            let _ = write!(label, " +{}", row.addresses.len() - 1);
        }
        let classes = |c: &[String]| {
            if c.is_empty() {
                "-".to_string()
            } else {
                c.join(",")
            }
        };
        let line = |i: usize| match cells.get(n) {
            Some(c) => format!(" {}", history::sparkline(&c[i], top[i])),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "{:<28} {:>10}{} {:>10}{} {:>10} {:>10} {:>7}  {}/{}",
            label,
            human_bps(row.down_bps),
            line(0),
            human_bps(row.up_bps),
            line(1),
            human_bytes(row.down_bytes),
            human_bytes(row.up_bytes),
            row.down_drops + row.up_drops,
            classes(&row.down_classes),
            classes(&row.up_classes),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::tc::Dir;
    use serde_json::Value;

    fn dev(dev: &str, role: Role, at: f64) -> DevSample {
        let dir = if role == Role::Down {
            Dir::Dst
        } else {
            Dir::Src
        };
        DevSample {
            dev: dev.into(),
            at,
            link_at: at,
            classes: fixtures::classes(&format!("class-{dev}.json")),
            filters: fixtures::filters(&format!("filter-{dev}.json"), dir),
            link: fixtures::link(&format!("link-{dev}.json")),
        }
    }

    /// The VM's samples as the later reading, and the same with every counter lowered by
    /// `less(handle)` bytes as the earlier one, `dt` seconds before.
    fn pair(less: impl Fn(&str, Role) -> u64, dt: f64) -> (Snapshot, Snapshot) {
        let cur = Snapshot {
            down: Some(dev("imq0", Role::Down, 100.0 + dt)),
            up: Some(dev("imq1", Role::Up, 100.0 + dt)),
        };
        let mut prev = cur.clone();
        for (s, role) in [(&mut prev.down, Role::Down), (&mut prev.up, Role::Up)] {
            let s = s.as_mut().unwrap();
            s.at = 100.0;
            s.link_at = 100.0;
            for c in &mut s.classes {
                c.bytes -= less(&c.handle, role);
            }
            s.link.tx_bytes -= 10_000;
        }
        (prev, cur)
    }

    fn row<'a>(r: &'a Report, label: &str) -> &'a Row {
        r.rows
            .iter()
            .find(|r| r.label == label)
            .unwrap_or_else(|| panic!("no row {label}: {r:#?}"))
    }

    #[test]
    fn clients_from_the_vm_samples() {
        // 1:10 carried 25 kB/s more down and 5 kB/s up, 1:20 50 kB/s down, 2 s apart.
        let (prev, cur) = pair(
            |h, role| match (h, role) {
                ("1:10", Role::Down) => 1000,
                ("1:10", Role::Up) => 10_000,
                ("1:20", Role::Down) => 100_000,
                _ => 0,
            },
            2.0,
        );
        let r = report(&prev, &cur);
        // 10.0.1.2 and 2001:db8:1::2 share 1:10 down; 10.0.1.3 and 2001:db8:1::3 share 1:20 up.
        let a = row(&r, "10.0.1.2");
        assert_eq!(a.addresses.len(), 2);
        assert_eq!(a.addresses[1].to_string(), "2001:db8:1::2");
        assert_eq!(
            (a.down_classes.as_slice(), a.up_classes.as_slice()),
            (&["1:10".to_string()][..], &["1:10".to_string()][..])
        );
        assert_eq!(a.down_bps, 4000.0);
        assert_eq!(a.up_bps, 40_000.0);
        assert_eq!((a.down_bytes, a.up_bytes), (1111, 129870));
        assert_eq!((a.down_packets, a.up_packets), (15, 106));
        let b = row(&r, "10.0.1.3");
        assert_eq!(b.addresses.len(), 2);
        assert_eq!(b.down_bps, 400_000.0);
        assert_eq!(b.up_bps, 0.0);
        assert_eq!((b.down_bytes, b.up_bytes), (129457, 2950));
        // The /24 filter to 1:99 on imq0 is a row of its own; 1:99 on imq1 has no address.
        let net = row(&r, "10.0.1.0/24");
        assert_eq!(net.down_bytes, 131413);
        assert!(net.up_classes.is_empty());
        let other = row(&r, "imq1:1:99");
        assert!(other.addresses.is_empty());
        assert_eq!(other.up_bytes, 56);
        // The inner class 1:1 is in no row; nothing else is.
        assert_eq!(r.rows.len(), 4);
        // Sorted by total rate.
        let order: Vec<&str> = r.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(order, ["10.0.1.3", "10.0.1.2", "10.0.1.0/24", "imq1:1:99"]);
        // Devices: tx went up by 10 kB in 2 s on both.
        assert_eq!(r.devices.len(), 2);
        assert_eq!(r.devices[0].dev, "imq0");
        assert_eq!(r.devices[0].tx_bps, 40_000.0);
        assert_eq!(r.devices[0].rx_bps, 0.0);
        assert_eq!(r.devices[1].role, Role::Up);
        // Every leaf's bytes are in exactly one row.
        for (role, d) in [(Role::Down, &cur.down), (Role::Up, &cur.up)] {
            let leaves: u64 = d
                .as_ref()
                .unwrap()
                .classes
                .iter()
                .filter(|c| c.handle != "1:1")
                .map(|c| c.bytes)
                .sum();
            let rows: u64 = r
                .rows
                .iter()
                .map(|x| {
                    if role == Role::Down {
                        x.down_bytes
                    } else {
                        x.up_bytes
                    }
                })
                .sum();
            assert_eq!(leaves, rows);
        }
    }

    #[test]
    fn first_sample_and_resets() {
        let cur = Snapshot {
            down: Some(dev("imq0", Role::Down, 5.0)),
            up: None,
        };
        // No earlier sample: totals, no rates.
        let r = report(&Snapshot::default(), &cur);
        assert!(r.rows.iter().all(|r| r.down_bps == 0.0 && r.up_bps == 0.0));
        assert_eq!(row(&r, "10.0.1.3").down_bytes, 129457);
        assert_eq!(r.devices.len(), 1);
        // A counter that went back counts from zero; a class that is new counts whole.
        let mut prev = cur.clone();
        let p = prev.down.as_mut().unwrap();
        p.at = 4.0;
        for c in &mut p.classes {
            if c.handle == "1:20" {
                c.bytes = 1_000_000_000;
            }
        }
        p.classes.retain(|c| c.handle != "1:10");
        let r = report(&prev, &cur);
        assert_eq!(row(&r, "10.0.1.3").down_bps, 129457.0 * 8.0);
        assert_eq!(row(&r, "10.0.1.2").down_bps, 1111.0 * 8.0);
        assert_eq!(row(&r, "10.0.1.0/24").down_bps, 0.0);
        // A different device in the earlier sample: no rates.
        prev.down.as_mut().unwrap().dev = "imq5".into();
        let r = report(&prev, &cur);
        assert_eq!(row(&r, "10.0.1.3").down_bps, 0.0);
    }

    #[test]
    fn mapped_inner_class_covers_its_leaves() {
        let class = |h: &str, parent: Option<&str>, bytes| Class {
            handle: h.into(),
            parent: parent.map(Into::into),
            bytes,
            packets: 1,
            drops: 0,
        };
        let s = DevSample {
            dev: "imq0".into(),
            at: 1.0,
            link_at: 1.0,
            classes: vec![
                class("1:1", None, 300),
                class("1:2", Some("1:1"), 200),
                class("1:3", Some("1:1"), 100),
                class("1:9", None, 7),
            ],
            filters: vec![
                ClientFilter {
                    flowid: "1:1".into(),
                    prefix: Prefix {
                        addr: "10.1.0.0".parse().unwrap(),
                        len: 16,
                    },
                },
                // A filter to a class that does not exist is ignored.
                ClientFilter {
                    flowid: "1:77".into(),
                    prefix: Prefix {
                        addr: "10.2.0.1".parse().unwrap(),
                        len: 32,
                    },
                },
            ],
            link: Link::default(),
        };
        let r = report(
            &Snapshot::default(),
            &Snapshot {
                down: Some(s),
                up: None,
            },
        );
        let labels: Vec<&str> = r.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["10.1.0.0/16", "imq0:1:9"]);
        assert_eq!(r.rows[0].down_bytes, 300);
    }

    #[test]
    fn output_forms() {
        let (prev, cur) = pair(
            |h, role| {
                if h == "1:20" && role == Role::Down {
                    100_000
                } else {
                    0
                }
            },
            1.0,
        );
        let r = report(&prev, &cur);
        let line = crate::json::line(&r, 1700000000.5004, 1.0);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v.get("time").unwrap().as_f64(), Some(1700000000.5));
        assert_eq!(v.get("interval").unwrap().as_f64(), Some(1.0));
        let clients = v.get("clients").unwrap().as_array().unwrap();
        assert_eq!(clients.len(), 4);
        let first = &clients[0];
        assert_eq!(first.get("address").unwrap().as_str(), Some("10.0.1.3"));
        assert_eq!(first.get("down_bps").unwrap().as_u64(), Some(800_000));
        assert_eq!(first.get("down_bytes").unwrap().as_u64(), Some(129457));
        assert_eq!(first.get("up_bytes").unwrap().as_u64(), Some(2950));
        assert_eq!(first.get("drops").unwrap().as_u64(), Some(0));
        let last = &clients[3];
        assert_eq!(last.get("address"), Some(&Value::Null));
        assert!(first.get("class").is_none());
        assert_eq!(
            first.get("addresses").unwrap()[1].as_str(),
            Some("2001:db8:1::3")
        );
        assert_eq!(last.get("class").unwrap().as_str(), Some("imq1:1:99"));
        let devs = v.get("devices").unwrap().as_array().unwrap();
        assert_eq!(devs[1].get("role").unwrap().as_str(), Some("up"));
        assert_eq!(devs[0].get("tx_bytes").unwrap().as_u64(), Some(261981));

        let t = table(&r, "12:00:00", 1.0, None);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1].contains("imq0") && lines[1].contains("80.0k"),
            "{t}"
        );
        let first = lines.iter().position(|l| l.starts_with("CLIENT")).unwrap() + 1;
        assert!(lines[first].starts_with("10.0.1.3 +1 "), "{t}");
        assert!(
            lines[first].contains("800k") && lines[first].ends_with("1:20/1:20"),
            "{t}"
        );
        assert!(lines.last().unwrap().starts_with("imq1:1:99 "), "{t}");
    }

    #[test]
    fn units() {
        assert_eq!(human_bps(950.0), "950");
        assert_eq!(human_bps(1024.0), "1.02k");
        assert_eq!(human_bps(2_000_000.0), "2.00M");
        assert_eq!(human_bps(15_300_000.0), "15.3M");
        assert_eq!(human_bps(999_400_000.0), "999M");
        assert_eq!(human_bytes(129457), "129kB");
        assert_eq!(human_bytes(0), "0B");
    }
}
