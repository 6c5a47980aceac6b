//! The access line written directly into the log writer's channel, byte for byte what
//! `tracing`'s text formatter writes for it (no colours). Through `tracing` the line cost
//! ~17 k instructions per request — 31 % of a single-record write (`docs/BENCHMARKS.md`),
//! nearly all of it the generic formatter; here it is a handful of appends. Used only for
//! the plain text format; JSON and coloured output keep going through `tracing`. The
//! `access` target's filter (`RUST_LOG=info,access=off`) still decides whether it is written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static DIRECT: AtomicBool = AtomicBool::new(false);

/// Write access lines directly (the process logs plain text without colours).
pub fn write_directly(on: bool) {
    DIRECT.store(on, Ordering::Relaxed);
}

/// The fields of one access line.
pub struct Line<'a> {
    pub id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: &'a str,
    pub ms: &'a str,
    pub key: &'a str,
}

/// Write `line` unless direct lines are off; `false` means the caller logs it through
/// `tracing` instead.
pub fn try_write(line: &Line) -> bool {
    if !DIRECT.load(Ordering::Relaxed) {
        return false;
    }
    if tracing::enabled!(target: "access", tracing::Level::INFO) {
        let mut out = Vec::with_capacity(160 + line.path.len());
        format(&mut out, SystemTime::now(), line);
        crate::ops::log_pipe::write_line(out);
    }
    true
}

/// `2026-12-02T12:04:06.912511Z  INFO request{id=…}: access: request id=… method=…
/// path=… status=… bytes="…" ms="…" key="…"` and a newline.
fn format(out: &mut Vec<u8>, now: SystemTime, l: &Line) {
    timestamp(out, now);
    out.extend_from_slice(b"  INFO request{id=");
    out.extend_from_slice(l.id.as_bytes());
    out.extend_from_slice(b"}: access: request id=");
    out.extend_from_slice(l.id.as_bytes());
    out.extend_from_slice(b" method=");
    out.extend_from_slice(l.method.as_bytes());
    out.extend_from_slice(b" path=");
    out.extend_from_slice(l.path.as_bytes());
    out.extend_from_slice(b" status=");
    match l.status {
        // An HTTP status is three digits; anything else is written the slow way.
        100..=999 => out.extend_from_slice(&[
            b'0' + (l.status / 100) as u8,
            b'0' + (l.status / 10 % 10) as u8,
            b'0' + (l.status % 10) as u8,
        ]),
        s => out.extend_from_slice(s.to_string().as_bytes()),
    }
    out.extend_from_slice(b" bytes=");
    quoted(out, l.bytes);
    out.extend_from_slice(b" ms=");
    quoted(out, l.ms);
    out.extend_from_slice(b" key=");
    quoted(out, l.key);
    out.push(b'\n');
}

/// A string field as `tracing` records one (its `Debug` form).
fn quoted(out: &mut Vec<u8>, s: &str) {
    let plain = s
        .bytes()
        .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{s:?}").as_bytes());
    }
}

/// RFC 3339 in UTC with microseconds, as `tracing`'s default timer writes it.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    );
    out.extend_from_slice(text.as_bytes());
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, by counting
/// 400-year eras (146,097 days each) from 0000-03-01 so that leap days fall at the end of
/// each year of the count.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn civil_dates_across_leap_rules() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(11_016), (2000, 2, 29)); // divisible by 400: leap
        assert_eq!(civil_date(11_017), (2000, 3, 1));
        assert_eq!(civil_date(47_541), (2100, 3, 1)); // divisible by 100 only: no Feb 29
        assert_eq!(civil_date(47_540), (2100, 2, 28));
        assert_eq!(civil_date(20_789), (2026, 12, 2));
        // Every day of 1970..2400 maps to the next day's date without gaps.
        let mut prev = civil_date(0);
        for d in 1..157_000 {
            let c = civil_date(d);
            let next_month = c.1 == prev.1 % 12 + 1 && c.2 == 1;
            assert!(
                (c.0, c.1, c.2) == (prev.0, prev.1, prev.2 + 1)
                    || (next_month && (c.0 == prev.0 || (c.1 == 1 && c.0 == prev.0 + 1))),
                "{prev:?} -> {c:?}"
            );
            prev = c;
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The direct line equals what `tracing`'s text formatter writes for the same event in
    /// the same span (the process's logging setup without colours), timestamp aside.
    #[test]
    fn the_direct_line_is_the_tracing_line() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        let line = Line {
            id: "r5f0c1a2b-17",
            method: "POST",
            path: "/v0/topics/orders?x=1&token=REDACTED",
            status: 200,
            bytes: "-",
            ms: "0.412",
            key: "0b3fa9c1",
        };
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", id = %line.id);
            let _in = span.enter();
            tracing::info!(target: "access", id = %line.id, method = %line.method,
                path = %line.path, status = line.status, bytes = line.bytes,
                ms = line.ms.to_string(), key = line.key.to_string(), "request");
        });
        let theirs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let mut ours = Vec::new();
        format(&mut ours, SystemTime::now(), &line);
        let ours = String::from_utf8(ours).unwrap();
        const TS: usize = "2026-12-02T12:04:06.912511Z".len();
        assert_eq!(ours[TS..], theirs[TS..], "ours:   {ours}theirs: {theirs}");
        assert_eq!(ours.as_bytes()[TS - 1], b'Z');
        assert_eq!(
            theirs.as_bytes()[TS - 1],
            b'Z',
            "tracing's timestamp shape: {theirs}"
        );
        // And the timestamps are the same instant's text, to the second.
        let at = |s: &str| s[..19].to_string();
        let mut again = Vec::new();
        timestamp(&mut again, SystemTime::now());
        let now = String::from_utf8(again).unwrap();
        assert!(
            at(&theirs) == at(&now) || at(&theirs) < at(&now),
            "{theirs} vs {now}"
        );
        let mut fixed = Vec::new();
        timestamp(
            &mut fixed,
            UNIX_EPOCH + Duration::new(1_796_214_246, 912_511_000),
        );
        assert_eq!(fixed, b"2026-12-02T12:24:06.912511Z");
    }

    #[test]
    fn strings_that_need_escaping_are_written_as_debug_strings() {
        let mut out = Vec::new();
        quoted(&mut out, "a\"b\\c\n");
        assert_eq!(out, format!("{:?}", "a\"b\\c\n").into_bytes());
    }
}
