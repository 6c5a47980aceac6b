//! Limits on JSON that common readers cannot parse, checked once over the raw request text
//! before any parser sees it. Records are stored as the bytes they arrived as and handed to
//! every later reader (Python `json`, `jq`, serde_json's own 128-level default), so a value
//! one of them rejects must never be stored: deep nesting, enormous number literals, and
//! unpaired UTF-16 surrogate escapes (`"\ud800"`, which no UTF-8 string can hold). serde_json
//! does not refuse these where records are parsed: a borrowed `RawValue` is skipped
//! iteratively, with no depth limit, no bound on digits and no check of `\u` escapes.
//!
//! The scan is one pass, string-aware, and never fails on malformed JSON: it only reports a
//! limit it has seen broken; the parser that runs next rejects everything else.

/// Deepest nesting of arrays and objects (combined) a stored value may have: `1` is depth 0,
/// `[]` and `{}` depth 1, `[{}]` depth 2.
pub const MAX_DEPTH: u32 = 128;

/// Longest number literal, in characters (sign, digits, `.`, exponent).
pub const MAX_NUMBER_CHARS: u32 = 100;

/// The first limit a JSON text breaks. `offset` is the byte where the scan noticed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitError {
    /// Nesting went past `max` levels below the value the limit applies to.
    TooDeep { max: u32, offset: usize },
    /// A number literal longer than `max` characters.
    NumberTooLong { max: u32, offset: usize },
    /// A `\uD800`–`\uDFFF` escape that is not a high surrogate followed by a low one.
    LoneSurrogate { offset: usize },
}

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitError::TooDeep { max, offset } => write!(
                f,
                "JSON nests arrays and objects deeper than {max} levels (at byte {offset})"
            ),
            LimitError::NumberTooLong { max, offset } => write!(
                f,
                "JSON number literal longer than {max} characters (at byte {offset})"
            ),
            LimitError::LoneSurrogate { offset } => write!(
                f,
                "JSON string holds an unpaired UTF-16 surrogate escape (at byte {offset})"
            ),
        }
    }
}

impl std::error::Error for LimitError {}

/// Byte classes outside strings. Letters of `true`/`false`/`null` other than `e` are OTHER;
/// an `e` there is a run of one, far below the number limit.
const OTHER: u8 = 0;
const NUMBER: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 3;
const QUOTE: u8 = 4;

const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = NUMBER;
        b += 1;
    }
    t[b'-' as usize] = NUMBER;
    t[b'+' as usize] = NUMBER;
    t[b'.' as usize] = NUMBER;
    t[b'e' as usize] = NUMBER;
    t[b'E' as usize] = NUMBER;
    t[b'[' as usize] = OPEN;
    t[b'{' as usize] = OPEN;
    t[b']' as usize] = CLOSE;
    t[b'}' as usize] = CLOSE;
    t[b'"' as usize] = QUOTE;
    t
};

/// Check `raw` against the limits. `envelope` is how many levels the text itself wraps
/// around the values the depth limit is about (3 for a write body: `{"records":[{"data":…`),
/// so the text as a whole may nest `MAX_DEPTH + envelope` levels.
pub fn check(raw: &[u8], envelope: u32) -> Result<(), LimitError> {
    let max_depth = MAX_DEPTH + envelope;
    let mut depth = 0u32;
    let mut number_run = 0u32;
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let class = CLASS[b as usize];
        // Counts consecutive number bytes without a branch: any other byte resets it.
        number_run = (number_run + 1) * u32::from(class == NUMBER);
        match class {
            NUMBER if number_run > MAX_NUMBER_CHARS => {
                return Err(LimitError::NumberTooLong {
                    max: MAX_NUMBER_CHARS,
                    offset: i,
                })
            }
            OPEN => {
                depth += 1;
                if depth > max_depth {
                    return Err(LimitError::TooDeep {
                        max: MAX_DEPTH,
                        offset: i,
                    });
                }
            }
            CLOSE => depth = depth.saturating_sub(1),
            QUOTE => {
                i = skip_string(raw, i + 1)?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// From just inside a string's opening quote, the index just past its closing quote (or the
/// end of `raw` if it never closes — the parser reports that).
fn skip_string(raw: &[u8], mut i: usize) -> Result<usize, LimitError> {
    loop {
        i = find_quote_or_backslash(raw, i);
        match raw.get(i) {
            None => return Ok(i),
            Some(b'"') => return Ok(i + 1),
            Some(_) => i = skip_escape(raw, i)?,
        }
    }
}

/// At a backslash inside a string: the index after its escape. A `\u` high surrogate must be
/// followed at once by a `\u` low surrogate; a low surrogate on its own is refused.
fn skip_escape(raw: &[u8], at: usize) -> Result<usize, LimitError> {
    if raw.get(at + 1) != Some(&b'u') {
        return Ok(at + 2);
    }
    let Some(unit) = hex4(raw, at + 2) else {
        return Ok(at + 2); // not a valid escape: the parser rejects it
    };
    match unit {
        0xD800..=0xDBFF => {
            let low = (raw.get(at + 6..at + 8) == Some(b"\\u"))
                .then(|| hex4(raw, at + 8))
                .flatten();
            match low {
                Some(0xDC00..=0xDFFF) => Ok(at + 12),
                _ => Err(LimitError::LoneSurrogate { offset: at }),
            }
        }
        0xDC00..=0xDFFF => Err(LimitError::LoneSurrogate { offset: at }),
        _ => Ok(at + 6),
    }
}

/// The four hex digits at `at` as a UTF-16 code unit.
fn hex4(raw: &[u8], at: usize) -> Option<u16> {
    raw.get(at..at + 4)?.iter().try_fold(0u16, |acc, &b| {
        Some(acc << 4 | (b as char).to_digit(16)? as u16)
    })
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of the word equals `b` (the classic zero-byte test on `w ^ b…b`).
fn word_has(w: u64, b: u8) -> bool {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// The first `"` or `\` at or after `i`, or `raw.len()`. String contents are most of a
/// record's bytes, so they are skipped eight at a time.
fn find_quote_or_backslash(raw: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = raw.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*chunk);
        if word_has(w, b'"') || word_has(w, b'\\') {
            break;
        }
        i += 8;
    }
    while let Some(&b) = raw.get(i) {
        if b == b'"' || b == b'\\' {
            return i;
        }
        i += 1;
    }
    raw.len()
}

#[cfg(test)]
mod tests;
