//! Sans-IO parser for the BIRD control-socket reply format (`docs/bird-notes.md` §1).
//!
//! Feed it one line at a time (without the trailing `\n`); it yields a [`Reply`] when a final
//! line (`NNNN ` — four digits and a space) arrives. Lines starting with `+` are asynchronous
//! messages and may appear anywhere, including between the parts of a reply; a line starting with
//! a single space is a continuation carrying the code of the previous line.

use crate::error::BirdError;

/// One line of a reply, with the code it carries (continuations inherit the previous code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    /// The four-digit reply code (0–9999).
    pub code: u16,
    /// The text after the `NNNN-` / `NNNN ` prefix or the continuation space.
    pub text: String,
}

/// A complete reply to one command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The code of the final line (`NNNN `).
    pub code: u16,
    /// All reply lines in order, the final line included.
    pub lines: Vec<ReplyLine>,
    /// Asynchronous `+` lines received while this reply was being read (without the `+`).
    pub async_lines: Vec<String>,
}

impl Reply {
    /// The text of the final line.
    pub fn final_text(&self) -> &str {
        self.lines.last().map(|l| l.text.as_str()).unwrap_or("")
    }

    /// The first line carrying a failure code (8xxx or 9xxx), if any.
    pub fn failure(&self) -> Option<&ReplyLine> {
        self.lines.iter().find(|l| l.code >= 8000)
    }

    /// Lines carrying the given code.
    pub fn lines_with(&self, code: u16) -> impl Iterator<Item = &ReplyLine> {
        self.lines.iter().filter(move |l| l.code == code)
    }

    /// Turns a reply whose final line or any line carries an 8xxx/9xxx code into a typed error.
    pub fn into_result(self) -> Result<Reply, BirdError> {
        match self.failure() {
            Some(l) => Err(BirdError::from_failure(l.code, &l.text)),
            None => Ok(self),
        }
    }
}

/// What feeding one line produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The line was consumed; the reply is not complete yet.
    Pending,
    /// The reply is complete.
    Complete(Reply),
}

/// Incremental reply parser. One instance per connection; it resets itself after each reply.
#[derive(Debug, Default)]
pub struct ReplyParser {
    cur: Reply,
    cur_code: Option<u16>,
    /// Async lines seen while no reply was being assembled (e.g. before the first reply line).
    started: bool,
}

fn parse_code(line: &str) -> Option<(u16, u8, &str)> {
    let b = line.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || !(b[4] == b' ' || b[4] == b'-') {
        return None;
    }
    let code: u16 = line[..4].parse().ok()?;
    Some((code, b[4], &line[5..]))
}

impl ReplyParser {
    /// A fresh parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether part of a reply (or an async line) has been consumed but the reply is not complete.
    pub fn in_progress(&self) -> bool {
        self.started
    }

    /// Feeds one line (a trailing `\r` or `\n` is stripped). Returns the reply when complete.
    pub fn feed(&mut self, line: &str) -> Result<Event, BirdError> {
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = line.strip_prefix('+') {
            self.started = true;
            self.cur.async_lines.push(rest.to_string());
            return Ok(Event::Pending);
        }
        if let Some((code, sep, text)) = parse_code(line) {
            self.started = true;
            self.cur_code = Some(code);
            self.cur.lines.push(ReplyLine {
                code,
                text: text.to_string(),
            });
            if sep == b' ' {
                let mut reply = std::mem::take(&mut self.cur);
                reply.code = code;
                self.cur_code = None;
                self.started = false;
                return Ok(Event::Complete(reply));
            }
            return Ok(Event::Pending);
        }
        // An empty line is tolerated as an empty continuation (transcripts with trimmed spaces).
        if let Some(rest) = line.strip_prefix(' ').or(line.is_empty().then_some("")) {
            let Some(code) = self.cur_code else {
                return Err(BirdError::Protocol(format!(
                    "continuation line without a preceding coded line: {line:?}"
                )));
            };
            self.started = true;
            self.cur.lines.push(ReplyLine {
                code,
                text: rest.to_string(),
            });
            return Ok(Event::Pending);
        }
        Err(BirdError::Protocol(format!(
            "malformed reply line: {line:?}"
        )))
    }

    /// Takes async lines collected while no reply was in progress (e.g. after a complete reply).
    pub fn take_async(&mut self) -> Vec<String> {
        std::mem::take(&mut self.cur.async_lines)
    }
}

/// Parses the welcome line `0001 BIRD <version> ready.` and returns the version.
pub fn parse_welcome(reply: &Reply) -> Result<String, BirdError> {
    let text = reply.final_text();
    if reply.code == 1
        && let Some(v) = text
            .strip_prefix("BIRD ")
            .and_then(|r| r.strip_suffix(" ready."))
        && !v.is_empty()
        && !v.contains(char::is_whitespace)
    {
        return Ok(v.to_string());
    }
    Err(BirdError::Protocol(format!(
        "unexpected welcome: {:04} {text}",
        reply.code
    )))
}

/// Quotes a string as a BIRD config/CLI string literal. Refuses characters that cannot appear
/// safely inside one (quotes, backslashes, control characters).
pub fn quote(s: &str) -> Result<String, BirdError> {
    if s.chars()
        .any(|c| c == '"' || c == '\\' || c.is_control() || c == '\u{7f}')
    {
        return Err(BirdError::InvalidArgument(format!(
            "string {s:?} contains a quote, backslash or control character"
        )));
    }
    Ok(format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(p: &mut ReplyParser, lines: &[&str]) -> Vec<Reply> {
        let mut out = Vec::new();
        for l in lines {
            if let Event::Complete(r) = p.feed(l).unwrap() {
                out.push(r);
            }
        }
        out
    }

    #[test]
    fn welcome() {
        let mut p = ReplyParser::new();
        let r = feed_all(&mut p, &["0001 BIRD 2.0.12 ready."]);
        assert_eq!(parse_welcome(&r[0]).unwrap(), "2.0.12");
        let r = feed_all(&mut p, &["0001 BIRD 2.20.0 ready.\n"]);
        assert_eq!(parse_welcome(&r[0]).unwrap(), "2.20.0");
        let r = feed_all(&mut p, &["0013 Daemon is up and running"]);
        assert!(parse_welcome(&r[0]).is_err());
    }

    #[test]
    fn show_status_transcript() {
        let mut p = ReplyParser::new();
        let r = feed_all(
            &mut p,
            &[
                "1000-BIRD 2.0.12",
                "1011-Router ID is 192.0.2.1",
                " Hostname is vm",
                " Current server time is 2026-11-24 04:54:12.798",
                " Last reboot on 2026-11-24 04:54:10.695",
                " Last reconfiguration on 2026-11-24 04:54:10.695",
                "0013 Daemon is up and running",
            ],
        );
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.code, 13);
        assert_eq!(r.lines.len(), 7);
        assert_eq!(r.lines[2].code, 1011);
        assert_eq!(r.lines[2].text, "Hostname is vm");
        assert!(r.clone().into_result().is_ok());
    }

    #[test]
    fn empty_final_line() {
        let mut p = ReplyParser::new();
        let r = feed_all(
            &mut p,
            &[
                "2002-Name Proto",
                "1002-device1 Device",
                " p1 Static",
                "0000 ",
            ],
        );
        assert_eq!(r[0].code, 0);
        assert_eq!(r[0].final_text(), "");
        assert_eq!(r[0].lines[2].code, 1002);
    }

    #[test]
    fn async_lines_anywhere() {
        let mut p = ReplyParser::new();
        let r = feed_all(
            &mut p,
            &[
                "+Config timeout expired, starting undo",
                "1000-BIRD 2.0.12",
                "+Disabling protocol p1",
                "1011-Router ID is 192.0.2.1",
                " Hostname is vm",
                "+another",
                "0013 Reconfiguration in progress",
            ],
        );
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].async_lines,
            vec![
                "Config timeout expired, starting undo",
                "Disabling protocol p1",
                "another"
            ]
        );
        assert_eq!(r[0].lines.len(), 4);
        assert_eq!(r[0].lines[2].code, 1011);
    }

    #[test]
    fn failures() {
        let mut p = ReplyParser::new();
        let r = feed_all(&mut p, &["8003 No protocols match"]);
        assert!(matches!(
            r[0].clone().into_result(),
            Err(BirdError::NoSuchProtocol(_))
        ));
        let r = feed_all(
            &mut p,
            &["9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting END"],
        );
        assert!(matches!(
            r[0].clone().into_result(),
            Err(BirdError::Parse(_))
        ));
        let r = feed_all(
            &mut p,
            &[
                "0002-Reading configuration from /d/bird.conf",
                "8002 /d/conf.d/s3.conf:1:59 syntax error, unexpected '}', expecting ';' or '{'",
            ],
        );
        match r[0].clone().into_result() {
            Err(BirdError::Config(e)) => {
                assert_eq!(e.file, "/d/conf.d/s3.conf");
                assert_eq!(e.line, Some(1));
                assert_eq!(e.column, Some(59));
                assert_eq!(
                    e.message,
                    "syntax error, unexpected '}', expecting ';' or '{'"
                );
            }
            other => panic!("{other:?}"),
        }
        // Per-protocol error inside a pattern command, followed by 0000.
        let r = feed_all(&mut p, &["8006-p1: reload failed", "0000 "]);
        assert!(matches!(
            r[0].clone().into_result(),
            Err(BirdError::Bird { code: 8006, .. })
        ));
        let r = feed_all(&mut p, &["0009-p1: disabled", "0000 "]);
        assert!(r[0].clone().into_result().is_ok());
    }

    #[test]
    fn malformed() {
        let mut p = ReplyParser::new();
        assert!(p.feed("garbage").is_err());
        let mut p = ReplyParser::new();
        assert!(p.feed(" continuation first").is_err());
        let mut p = ReplyParser::new();
        assert!(p.feed("12a4 x").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("evpn_a-b").unwrap(), "\"evpn_a-b\"");
        assert!(quote("a\"; configure").is_err());
        assert!(quote("a\nb").is_err());
        assert!(quote("a\\b").is_err());
    }
}
