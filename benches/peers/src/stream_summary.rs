//! Markdown tables for the log-stream cells (`load`) and the disk probe (`disk`): medians over
//! the repetitions, then the ratios the project steers by, each computed from one run.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::summary::{col, median, range};

type Key = (String, String, u64, u64, u64); // label, op, batch, conns, topics

fn key(l: &Value) -> Key {
    let n = |k: &str| l[k].as_u64().unwrap_or(0);
    let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
    (s("label"), s("op"), n("batch"), n("conns"), n("topics"))
}

pub fn print(lines: &[Value]) {
    let mut cells: BTreeMap<Key, Vec<&Value>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l["kind"] == "stream") {
        cells.entry(key(l)).or_default().push(l);
    }
    if !cells.is_empty() {
        print_cells(&cells);
        print_ratios(&cells);
    }
    let disk: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "disk").collect();
    print_disk(&disk);
    print_floor(&cells, &disk);
    println!();
}

/// A single writer's durable ack against the disk's own write + fdatasync (`single` part).
fn print_floor(cells: &BTreeMap<Key, Vec<&Value>>, disk: &[&Value]) {
    let append: Vec<&Value> = disk
        .iter()
        .copied()
        .filter(|l| l["mode"] == "append")
        .collect();
    let floor = median(col(&append, "p50_ms"));
    let systems = [
        ("topics-fsync", "topics `fsync` b1"),
        ("redis-always", "Redis always XADD pipe1"),
    ];
    let mut rows = Vec::new();
    for (label, name) in systems {
        if let Some(r) = cells.get(&(label.to_string(), "write".to_string(), 1, 1, 1)) {
            let p50 = median(col(r, "p50_ms"));
            rows.push((name, p50, p50 / floor));
        }
    }
    if rows.is_empty() || !floor.is_finite() {
        return;
    }
    println!();
    println!("| one connection, durable b1 | p50 ms | ÷ disk append p50 ({floor:.3} ms) | goal |");
    println!("|---|---:|---:|---|");
    for (name, p50, r) in rows {
        let goal = if name.starts_with("topics") {
            "≤ 1.5"
        } else {
            "—"
        };
        println!("| {name} | {p50:.3} | {r:.2} | {goal} |");
    }
}

fn print_disk(disk: &[&Value]) {
    if !disk.is_empty() {
        println!();
        println!("| disk: 4 KiB write + fdatasync, QD1 | reps | IOPS (median) | p50 ms | p99 ms |");
        println!("|---|---:|---:|---:|---:|");
        for mode in ["append", "fallocated", "preallocated"] {
            let rows: Vec<&Value> = disk.iter().copied().filter(|l| l["mode"] == mode).collect();
            if !rows.is_empty() {
                println!(
                    "| {mode} | {} | {:.0} | {:.3} | {:.3} |",
                    rows.len(),
                    median(col(&rows, "iops")),
                    median(col(&rows, "p50_ms")),
                    median(col(&rows, "p99_ms")),
                );
            }
        }
    }
}

fn print_cells(cells: &BTreeMap<Key, Vec<&Value>>) {
    println!("| system | op | batch | conns | topics | reps | records/s (median) | range | p50 ms | p99 ms | p99.9 ms | max ms | srv CPU % | gen CPU % | srv RSS MiB | heap MiB | file-backed MiB | load 1m | failed |");
    println!(
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for ((label, op, batch, conns, topics), rows) in cells {
        let maxes = col(rows, "max_ms").into_iter().fold(0.0, f64::max);
        println!(
            "| {label} | {op} | {batch} | {conns} | {topics} | {} | {:.0} | {} | {:.3} | {:.2} | {:.2} | {maxes:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {} |",
            rows.len(),
            median(col(rows, "records_per_s")),
            range(rows, "records_per_s"),
            median(col(rows, "p50_ms")),
            median(col(rows, "p99_ms")),
            median(col(rows, "p999_ms")),
            median(col(rows, "server_cpu_pct")),
            median(col(rows, "client_cpu_pct")),
            median(col(rows, "server_rss_mib")),
            median(col(rows, "server_anon_mib")),
            median(col(rows, "server_file_mib")),
            median(col(rows, "load1")),
            col(rows, "failed").iter().filter(|x| x.is_finite()).sum::<f64>(),
        );
    }
}

/// `(label, op, batch, topics)` of one cell; the connection count is the run's common one.
type Pick<'a> = (&'a str, &'a str, u64, u64);

/// The connection count most cells ran at: ratios compare cells at the same count.
fn common_conns(cells: &BTreeMap<Key, Vec<&Value>>) -> u64 {
    let mut n: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, _, _, c, _) in cells.keys() {
        *n.entry(*c).or_default() += 1;
    }
    n.into_iter().max_by_key(|(_, k)| *k).map_or(16, |(c, _)| c)
}

fn print_ratios(cells: &BTreeMap<Key, Vec<&Value>>) {
    let conns = common_conns(cells);
    let at = |(l, op, b, t): Pick, c: u64, k: &str| {
        cells
            .get(&(l.to_string(), op.to_string(), b, c, t))
            .map_or(f64::NAN, |rows| median(col(rows, k)))
    };
    let rate = |p: Pick| at(p, conns, "records_per_s");
    println!();
    println!("| ratio (same run, {conns} connections unless named) | value | goal |");
    println!("|---|---:|---|");
    let ratios: [(&str, Pick, Pick, &str); 8] = [
        (
            "topics `disk` b100 ÷ Redis everysec XADD pipe100",
            ("topics-disk", "write", 100, 1),
            ("redis-everysec", "write", 100, 1),
            "≥ 2.4",
        ),
        (
            "topics `fsync` b100 ÷ Redis always XADD pipe100",
            ("topics-fsync", "write", 100, 1),
            ("redis-always", "write", 100, 1),
            "≥ 2.4",
        ),
        (
            "topics `disk` b1 ÷ Redis everysec XADD pipe1",
            ("topics-disk", "write", 1, 1),
            ("redis-everysec", "write", 1, 1),
            "≥ 1.0",
        ),
        (
            "topics `fsync` b1 ÷ Redis always XADD pipe1",
            ("topics-fsync", "write", 1, 1),
            ("redis-always", "write", 1, 1),
            "≥ 1.0",
        ),
        (
            "topics `disk` b100 ÷ NATS JetStream publish window100",
            ("topics-disk", "write", 100, 1),
            ("nats-file", "write", 100, 1),
            "—",
        ),
        (
            "topics diff limit1000 ÷ Redis XRANGE count1000",
            ("topics-disk", "read", 1000, 1),
            ("redis-everysec", "read", 1000, 1),
            "≥ 0.5",
        ),
        (
            "topics `ephemeral` b1 ÷ hello GET",
            ("topics-ephemeral", "write", 1, 1),
            ("hello", "get", 1, 1),
            "≥ 0.75",
        ),
        (
            "topics `ephemeral` b1 ÷ hello POST (same body)",
            ("topics-ephemeral", "write", 1, 1),
            ("hello", "write", 1, 1),
            "—",
        ),
    ];
    for (name, a, b, goal) in ratios {
        let r = rate(a) / rate(b);
        if r.is_finite() {
            println!("| {name} | {r:.2} | {goal} |");
        }
    }
    // The many-topic cells run at their own connection count; compared at that count.
    let many_conns: std::collections::BTreeSet<u64> = cells
        .keys()
        .filter(|k| k.0 == "topics-disk" && k.4 == 1000)
        .map(|k| k.3)
        .collect();
    for c in &many_conns {
        let many = at(("topics-disk", "write", 100, 1000), *c, "records_per_s");
        let one = at(("topics-disk", "write", 100, 1), *c, "records_per_s");
        if many.is_finite() {
            println!("| 1000-topic aggregate, `disk` b100, {c} conns (records/s) | {many:.0} | ≥ 1,000,000 |");
        }
        if (many / one).is_finite() {
            println!(
                "| 1000 topics ÷ one topic, `disk` b100, {c} conns | {:.2} | ≥ 0.7 |",
                many / one
            );
        }
    }
    let spread = at(("topics-disk", "write", 100, 1), conns, "p99_ms")
        / at(("topics-disk", "write", 100, 1), conns, "p50_ms");
    if spread.is_finite() {
        println!("| topics `disk` b100 p99 ÷ p50 | {spread:.2} | ≤ 2 |");
    }
}
