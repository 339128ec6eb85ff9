//! A record as one journal line, written by hand: byte for byte what serde_json writes for
//! [`Record`], at about half its cost. An apply writes three lines an action, and
//! serde's map machinery (each key escaped like a value, each field through a trait call) was
//! the largest part of their cost (issue 16, BENCHMARKS.md).

use crate::state::{Record, State};

/// Appends `record` and a newline to `out`.
pub fn write(record: &Record, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"at\":");
    string(&record.at, out);
    out.extend_from_slice(b",\"run\":");
    string(&record.run, out);
    out.extend_from_slice(b",\"action\":");
    string(&record.action, out);
    out.extend_from_slice(b",\"job\":");
    string(&record.job, out);
    out.extend_from_slice(b",\"target\":");
    string(&record.target, out);
    out.extend_from_slice(b",\"state\":\"");
    out.extend_from_slice(state(record.state).as_bytes());
    out.push(b'"');
    if record.attempt != 0 {
        out.extend_from_slice(b",\"attempt\":");
        number(u64::from(record.attempt), out);
    }
    if let Some(status) = record.http_status {
        out.extend_from_slice(b",\"http_status\":");
        number(u64::from(status), out);
    }
    if !record.detail.is_empty() {
        out.extend_from_slice(b",\"detail\":");
        string(&record.detail, out);
    }
    out.extend_from_slice(b"}\n");
}

/// A number in decimal.
fn number(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + u8::try_from(n % 10).expect("a digit");
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A state's name as serde spells it (`rename_all = "snake_case"`).
fn state(state: State) -> &'static str {
    match state {
        State::Planned => "planned",
        State::Sent => "sent",
        State::Succeeded => "succeeded",
        State::Converged => "converged",
        State::Failed => "failed",
        State::Unknown => "unknown",
        State::Skipped => "skipped",
    }
}

/// A JSON string as serde_json escapes it: `"` and `\`, the short forms of `\b \t \n \f \r`,
/// `\u00xx` (lower-case hex) for the other control characters, everything else as it is.
fn string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.push(b'"');
    // Most strings (times, ids, names, messages) have nothing to escape: one copy. A Venafi DN
    // has a `\` every few bytes: copied run by run.
    let mut start = 0;
    if bytes.iter().any(|&b| ESCAPE[usize::from(b)] != 0) {
        for (i, &b) in bytes.iter().enumerate() {
            let how = ESCAPE[usize::from(b)];
            if how == 0 {
                continue;
            }
            out.extend_from_slice(&bytes[start..i]);
            if how == b'u' {
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
            } else {
                out.extend_from_slice(&[b'\\', how]);
            }
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Per byte, how it is escaped: 0 not at all, `u` as `\u00xx`, else `\` and this letter.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn by_serde(record: &Record) -> Vec<u8> {
        let mut out = serde_json::to_vec(record).expect("serializes");
        out.push(b'\n');
        out
    }

    fn by_hand(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        write(record, &mut out);
        out
    }

    fn record(text: &str, state: State, attempt: u32, http_status: Option<u16>) -> Record {
        Record {
            at: "2026-12-03T11:24:59.268270476Z".to_owned(),
            run: format!("run{text}"),
            action: "716334752ae7e550".to_owned(),
            job: format!("job {text}"),
            target: format!("\\VED\\Policy\\{text}"),
            state,
            attempt,
            http_status,
            detail: text.to_owned(),
        }
    }

    #[test]
    fn every_character_is_written_as_serde_json_writes_it() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        let texts = [
            String::new(),
            every_ascii,
            "plain".to_owned(),
            "\"quoted\" \\ back\u{7f}slash".to_owned(),
            "ünïcødé — 証明書 🔐 \u{2028}\u{2029}\u{feff}".to_owned(),
            "\u{0}\u{1f}\n\r\t\u{8}\u{c}end".to_owned(),
        ];
        for text in &texts {
            for state in State::ALL {
                let cases = [
                    (0, None),
                    (1, Some(200)),
                    (0, Some(0)),
                    (u32::MAX, Some(u16::MAX)),
                ];
                for (attempt, status) in cases {
                    let r = record(text, state, attempt, status);
                    assert_eq!(
                        String::from_utf8(by_hand(&r)).expect("utf-8"),
                        String::from_utf8(by_serde(&r)).expect("utf-8"),
                        "{r:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_character_to_escape_is_found_at_every_place_in_a_string() {
        for special in ['"', '\\', '\u{0}', '\u{1f}', '\n', ' ', '\u{7f}', 'é'] {
            for at in 0..20 {
                let mut text: String = "abcdefghijklmnopqrst".chars().take(20).collect();
                text.replace_range(at..=at, &special.to_string());
                let r = record(&text, State::Sent, 1, None);
                assert_eq!(by_hand(&r), by_serde(&r), "{text:?}");
            }
        }
    }

    #[test]
    fn a_line_reads_back_as_its_record() {
        let r = record("a \"b\" \\c\u{1}", State::Unknown, 3, Some(503));
        let line = by_hand(&r);
        assert_eq!(line.last(), Some(&b'\n'));
        let back: Record = serde_json::from_slice(&line).expect("parses");
        assert_eq!(back, r);
    }
}
