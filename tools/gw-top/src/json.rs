//! `--json`: one object per refresh and line, written by serde_json. The field names and their
//! meaning are the interface scripts rely on (tests/cases/imq-gw-top.sh reads them).

use crate::tc::Prefix;
use crate::view::Report;
use serde::Serialize;

#[derive(Serialize)]
struct Line<'a> {
    /// Unix seconds when the counters were read, to the millisecond.
    time: f64,
    /// Seconds since the previous reading.
    interval: f64,
    devices: Vec<Device<'a>>,
    clients: Vec<Client<'a>>,
}

#[derive(Serialize)]
struct Device<'a> {
    dev: &'a str,
    role: &'static str,
    rx_bps: u64,
    tx_bps: u64,
    rx_bytes: u64,
    rx_packets: u64,
    tx_bytes: u64,
    tx_packets: u64,
    dropped: u64,
}

/// A client, or a class no address filter leads to (`address` null, `class` "DEV:CLASS").
#[derive(Serialize)]
struct Client<'a> {
    address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'a str>,
    addresses: Vec<String>,
    down_classes: &'a [String],
    up_classes: &'a [String],
    down_bps: u64,
    up_bps: u64,
    down_bytes: u64,
    up_bytes: u64,
    down_packets: u64,
    up_packets: u64,
    down_drops: u64,
    up_drops: u64,
    drops: u64,
}

fn millis(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Whole bits per second.
fn bps(x: f64) -> u64 {
    x.round() as u64
}

/// The line for report `r`, read at `unix_time`, `interval` seconds after the previous one.
pub fn line(r: &Report, unix_time: f64, interval: f64) -> String {
    let devices = r
        .devices
        .iter()
        .map(|d| Device {
            dev: &d.dev,
            role: d.role.name(),
            rx_bps: bps(d.rx_bps),
            tx_bps: bps(d.tx_bps),
            rx_bytes: d.link.rx_bytes,
            rx_packets: d.link.rx_packets,
            tx_bytes: d.link.tx_bytes,
            tx_packets: d.link.tx_packets,
            dropped: d.link.dropped,
        })
        .collect();
    let clients = r
        .rows
        .iter()
        .map(|c| {
            let mapped = !c.addresses.is_empty();
            Client {
                address: mapped.then_some(c.label.as_str()),
                class: (!mapped).then_some(c.label.as_str()),
                addresses: c.addresses.iter().map(Prefix::to_string).collect(),
                down_classes: &c.down_classes,
                up_classes: &c.up_classes,
                down_bps: bps(c.down_bps),
                up_bps: bps(c.up_bps),
                down_bytes: c.down_bytes,
                up_bytes: c.up_bytes,
                down_packets: c.down_packets,
                up_packets: c.up_packets,
                down_drops: c.down_drops,
                up_drops: c.up_drops,
                drops: c.down_drops + c.up_drops,
            }
        })
        .collect();
    let l = Line {
        time: millis(unix_time),
        interval: millis(interval),
        devices,
        clients,
    };
    // Plain data with string keys: serializing it cannot fail.
    serde_json::to_string(&l).unwrap_or_default()
}
