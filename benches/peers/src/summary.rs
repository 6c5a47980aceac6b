//! Turns the JSON lines written by `load`, `disk`, `drain` and `poison` into markdown tables: medians over the
//! repetitions of each cell, then the goals with the measured ratios.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;

use crate::Res;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn col(rows: &[&Value], k: &str) -> Vec<f64> {
    rows.iter()
        .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
        .collect()
}

pub fn range(rows: &[&Value], k: &str) -> String {
    let v = col(rows, k);
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.0}–{hi:.0}")
}

/// Order in which the systems are listed.
const ORDER: [&str; 6] = [
    "topics-disk",
    "redis-everysec",
    "nats-file",
    "topics-fsync",
    "redis-always",
    "fairness",
];

pub fn run(path: &str) -> Res<()> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(path)?;
    }
    let all: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // A stalled cell (no progress for 15 s) has no meaningful rate: listed, not averaged.
    let (stalled, lines): (Vec<Value>, Vec<Value>) =
        all.into_iter().partition(|l| l["stalled"] == true);
    for l in &stalled {
        let text: String = l.to_string().chars().take(400).collect();
        println!("stalled cell, left out of the tables: `{text}`");
        println!();
    }

    crate::stream_summary::print(&lines);
    if !lines
        .iter()
        .any(|l| l["kind"] == "drain" || l["kind"] == "poison")
    {
        return Ok(());
    }

    // ---- drain cells
    let mut cells: BTreeMap<(usize, u64, u64), Vec<&Value>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l["kind"] == "drain") {
        let label = l["label"].as_str().unwrap_or("");
        let pos = ORDER
            .iter()
            .position(|o| *o == label)
            .unwrap_or(ORDER.len());
        let key = (
            pos,
            l["batch"].as_u64().unwrap_or(0),
            l["workers"].as_u64().unwrap_or(0),
        );
        cells.entry(key).or_default().push(l);
    }
    let mut med: BTreeMap<(String, u64), f64> = BTreeMap::new();
    println!("| system | workers | batch | reps | jobs/s (median) | jobs/s (range) | claim p50 ms | claim p99 ms | server CPU % | client CPU % | load avg 1m | 429s (sum) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((pos, batch, workers), rows) in &cells {
        let label = ORDER.get(*pos).copied().unwrap_or("?");
        let jps = median(col(rows, "jobs_per_s"));
        med.insert((label.to_string(), *batch), jps);
        println!(
            "| {label} | {workers} | {batch} | {} | {jps:.0} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2} | {} |",
            rows.len(),
            range(rows, "jobs_per_s"),
            median(col(rows, "claim_p50_ms")),
            median(col(rows, "claim_p99_ms")),
            median(col(rows, "server_cpu_pct")),
            median(col(rows, "client_cpu_pct")),
            median(col(rows, "load1")),
            col(rows, "throttled_429").iter().filter(|x| x.is_finite()).sum::<f64>(),
        );
    }

    // ---- fairness
    let fair: Vec<&Value> = lines.iter().filter(|l| l["label"] == "fairness").collect();
    let mut fair_by_batch: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for l in &fair {
        fair_by_batch
            .entry(l["batch"].as_u64().unwrap_or(0))
            .or_default()
            .push(l);
    }
    if !fair.is_empty() {
        println!();
        println!("| fairness: workers | jobs | claim max | reps | worst max share / fair | worst min share / fair |");
        println!("|---:|---:|---:|---:|---:|---:|");
        for (b, rows) in &fair_by_batch {
            let maxs = col(rows, "max_share").into_iter().fold(0.0, f64::max);
            let mins = col(rows, "min_share")
                .into_iter()
                .fold(f64::INFINITY, f64::min);
            println!(
                "| {} | {} | {b} | {} | {maxs:.3} | {mins:.3} |",
                rows[0]["workers"],
                rows[0]["jobs"],
                rows.len()
            );
        }
    }

    // ---- poison
    let mut poison: BTreeMap<(u64, bool), Vec<&Value>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l["kind"] == "poison") {
        let k = (
            l["batch"].as_u64().unwrap_or(0),
            l["poison"].as_bool().unwrap_or(false),
        );
        poison.entry(k).or_default().push(l);
    }
    let mut poison_ratio: BTreeMap<u64, f64> = BTreeMap::new();
    let mut poison_worst_deliv: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    if !poison.is_empty() {
        println!();
        println!("| poison run: workers | good jobs | claim max | poison job | reps | good jobs/s (median) | range | poison deliveries (max over reps) | dead-lettered | max_deliveries | 429s (sum) |");
        println!("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        for ((b, p), rows) in &poison {
            let jps = median(col(rows, "good_jobs_per_s"));
            let deliv = rows
                .iter()
                .filter_map(|r| r["poison_deliveries"].as_u64())
                .max();
            let dl = rows
                .iter()
                .map(|r| r["queue_after"]["dead_lettered"].as_u64().unwrap_or(0))
                .min()
                .unwrap_or(0);
            let maxd = rows[0]["max_deliveries"].as_u64().unwrap_or(0);
            if *p {
                poison_worst_deliv.insert(*b, (deliv.unwrap_or(0), maxd));
                if let Some(base) = poison.get(&(*b, false)) {
                    // Each repetition runs the pair back to back: the median of the per-pair
                    // ratios, when every pair is complete; else the ratio of the medians.
                    let r = if base.len() == rows.len() {
                        let with = col(rows, "good_jobs_per_s");
                        let without = col(base, "good_jobs_per_s");
                        median(with.iter().zip(&without).map(|(a, z)| a / z).collect())
                    } else {
                        jps / median(col(base, "good_jobs_per_s"))
                    };
                    poison_ratio.insert(*b, r);
                }
            }
            println!(
                "| {} | {} | {b} | {} | {} | {jps:.0} | {} | {} | {} | {} | {} |",
                rows[0]["workers"],
                rows[0]["jobs"],
                if *p { "yes" } else { "no" },
                rows.len(),
                range(rows, "good_jobs_per_s"),
                if *p {
                    deliv.map(|d| d.to_string()).unwrap_or_default()
                } else {
                    "–".into()
                },
                if *p {
                    format!("{dl} (min over reps)")
                } else {
                    "–".into()
                },
                maxd,
                col(rows, "throttled_429")
                    .iter()
                    .filter(|x| x.is_finite())
                    .sum::<f64>(),
            );
        }
    }

    // ---- goals
    println!();
    println!("| goal | batch | measured | met? |");
    println!("|---|---:|---:|---|");
    let batches: Vec<u64> = med
        .keys()
        .map(|(_, b)| *b)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for b in &batches {
        let g = |l: &str| med.get(&(l.to_string(), *b)).copied();
        for (goal, a, z, want) in [
            (
                "topics `disk` ≥ 1.0× Redis AOF everysec",
                "topics-disk",
                "redis-everysec",
                1.0,
            ),
            (
                "topics `fsync`+`leases_durable` ≥ 1.0× Redis AOF always",
                "topics-fsync",
                "redis-always",
                1.0,
            ),
            (
                "topics `disk` ≥ 2× NATS JetStream (file)",
                "topics-disk",
                "nats-file",
                2.0,
            ),
        ] {
            if let (Some(x), Some(y)) = (g(a), g(z)) {
                let r = x / y;
                println!(
                    "| {goal} | {b} | {r:.2}× ({x:.0} vs {y:.0} jobs/s) | {} |",
                    if r >= want { "yes" } else { "no" }
                );
            }
        }
    }
    for (b, rows) in &fair_by_batch {
        let maxs = col(rows, "max_share").into_iter().fold(0.0, f64::max);
        println!(
            "| fairness: no worker above fair share + 10 % | {b} | worst {:.1} % of fair share | {} |",
            maxs * 100.0,
            if maxs <= 1.10 { "yes" } else { "no" }
        );
    }
    for (b, r) in &poison_ratio {
        println!(
            "| poison: good-job throughput ≥ 95 % of the run without it (median of back-to-back pairs) | {b} | {:.1} % | {} |",
            r * 100.0,
            if *r >= 0.95 { "yes" } else { "no" }
        );
    }
    for (b, (d, m)) in &poison_worst_deliv {
        println!(
            "| poison: deliveries before dead-lettering ≤ max_deliveries | {b} | {d} (max_deliveries {m}) | {} |",
            if d <= m { "yes" } else { "no" }
        );
    }
    Ok(())
}
