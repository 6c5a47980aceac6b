//! `topics work`: exit 0 acks, anything else nacks (and the job comes back with one more
//! delivery); a command running past its lease keeps the job; SIGTERM hands running jobs
//! back at once and exits 0.

use super::{cli, eventually, Running};
use crate::harness::{Server, TempDir};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

fn queue(s: &Server, name: &str, jobs: usize) {
    s.create(name, json!({"type": "queue"}));
    let recs: Vec<Value> = (1..=jobs).map(|i| json!({"data": {"n": i}})).collect();
    s.write(name, Value::Array(recs));
}

/// A shell script in `dir`, run as `sh FILE`.
fn script(dir: &Path, body: &str) -> String {
    let path = dir.join("job.sh");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

fn counters(s: &Server, q: &str) -> Value {
    let st = s.state(q);
    json!({"count": st["count"], "in_flight": st["queue"]["in_flight"]})
}

#[test]
fn work_acks_successes_and_retries_failures() {
    let s = Server::start();
    queue(&s, "q", 6);
    let tmp = TempDir::new();
    let log = tmp.path().join("done.log");
    // Odd jobs fail on their first delivery. The job's data arrives on stdin, one JSON line.
    let sh = script(
        tmp.path(),
        &format!(
            "read job\nn=$(echo \"$job\" | tr -dc 0-9)\n\
             if [ $((n % 2)) = 1 ] && [ \"$TOPICS_JOB_DELIVERIES\" = 1 ]; then exit 7; fi\n\
             echo \"$n $TOPICS_JOB_DELIVERIES $TOPICS_JOB_SEQ $TOPICS_QUEUE\" >> {}\n",
            log.display()
        ),
    );
    let args = [
        "work",
        "q",
        "-j",
        "3",
        "--retry-base-ms",
        "50",
        "--idle-ms",
        "100",
        "--",
        "sh",
        &sh,
    ];
    let mut work = Running::spawn(cli(&s, &args));
    eventually("every job acked", Duration::from_secs(15), || {
        s.state("q")["count"] == 0
    });
    work.signal("-TERM");
    assert_eq!(work.wait(Duration::from_secs(10)).code(), Some(0));
    let mut done: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    done.sort();
    let want: Vec<String> = (1..=6)
        .map(|n| format!("{n} {} {n} q", if n % 2 == 1 { 2 } else { 1 }))
        .collect();
    assert_eq!(
        done, want,
        "each job done once; odd ones on their second delivery"
    );
    let failures = work
        .stderr()
        .iter()
        .filter(|l| l.contains("failed: exit status: 7"))
        .count();
    assert_eq!(failures, 3, "{:?}", work.stderr());
}

#[test]
fn work_extends_the_lease_of_a_command_running_past_it() {
    let s = Server::start();
    queue(&s, "q", 1);
    let tmp = TempDir::new();
    let log = tmp.path().join("runs.log");
    let sh = script(
        tmp.path(),
        &format!(
            "echo \"$TOPICS_JOB_DELIVERIES\" >> {}\nsleep 2.5\n",
            log.display()
        ),
    );
    // A 600 ms lease, renewed every 200 ms; a second slot would take the job if it expired.
    let args = [
        "work",
        "q",
        "-j",
        "2",
        "--lease-ms",
        "600",
        "--idle-ms",
        "100",
        "--",
        "sh",
        &sh,
    ];
    let mut work = Running::spawn(cli(&s, &args));
    eventually("the job is acked", Duration::from_secs(10), || {
        s.state("q")["count"] == 0
    });
    work.signal("-INT");
    assert_eq!(work.wait(Duration::from_secs(10)).code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "1\n",
        "one run, on the first delivery: {:?}",
        work.stderr()
    );
}

#[test]
fn sigterm_stops_commands_and_releases_their_leases_at_once() {
    let s = Server::start();
    queue(&s, "q", 3);
    let args = [
        "work",
        "q",
        "-j",
        "2",
        "--lease-ms",
        "60000",
        "--",
        "sh",
        "-c",
        "exec sleep 30",
    ];
    let mut work = Running::spawn(cli(&s, &args));
    eventually("two jobs leased", Duration::from_secs(10), || {
        counters(&s, "q")["in_flight"] == 2
    });
    let t0 = Instant::now();
    work.signal("-TERM");
    assert_eq!(
        work.wait(Duration::from_secs(10)).code(),
        Some(0),
        "{:?}",
        work.stderr()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the commands were stopped, not waited for"
    );
    assert_eq!(counters(&s, "q"), json!({"count": 3, "in_flight": 0}));
    let claimed = s
        .post("/v0/topics/q/claim", &json!({"node": "other", "max": 10}))
        .expect(200);
    assert_eq!(
        claimed["claimed"].as_array().unwrap().len(),
        3,
        "the released jobs are claimable at once, well before their 60 s lease: {claimed}"
    );
}

#[test]
fn work_on_a_log_topic_fails_with_the_servers_error() {
    let s = Server::start();
    s.write("log", json!([{"data": 1}]));
    let (status, _, err) = super::run(cli(&s, &["work", "log", "--", "true"]));
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("error: not_a_queue"), "{err}");
}
