//! Server-Sent Events: a line parser for streams we read, and the framing for streams we write.

use std::io::BufRead;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Reads events one at a time from a buffered stream.
pub struct Reader<R> {
    inner: R,
    line: String,
    /// The last `retry:` seen on this stream, in milliseconds.
    pub retry: Option<u64>,
    /// The last event id seen on this stream.
    pub last_id: Option<String>,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader { inner, line: String::new(), retry: None, last_id: None }
    }

    /// The next event with data or an id, or `None` at the end of the stream.
    pub fn next_event(&mut self) -> Option<Event> {
        let mut ev = Event::default();
        let mut has_data = false;
        let mut has_any = false;
        loop {
            self.line.clear();
            match self.inner.read_line(&mut self.line) {
                Ok(0) | Err(_) => return if has_data { Some(ev) } else { None },
                Ok(_) => {}
            }
            let line = self.line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if has_data || (has_any && ev.id.is_some()) {
                    return Some(ev);
                }
                ev = Event::default();
                has_any = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.find(':') {
                Some(i) => (&line[..i], line[i + 1..].strip_prefix(' ').unwrap_or(&line[i + 1..])),
                None => (line, ""),
            };
            has_any = true;
            match field {
                "data" => {
                    if has_data {
                        ev.data.push('\n');
                    }
                    ev.data.push_str(value);
                    has_data = true;
                }
                "event" => ev.event = Some(value.to_string()),
                "id" => {
                    ev.id = Some(value.to_string());
                    self.last_id = Some(value.to_string());
                }
                "retry" => {
                    if let Ok(ms) = value.parse() {
                        ev.retry = Some(ms);
                        self.retry = Some(ms);
                    }
                }
                _ => {}
            }
        }
    }
}

/// One event as bytes on the wire.
pub fn frame(id: Option<&str>, data: &str) -> String {
    let mut s = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        s.push_str("id: ");
        s.push_str(id);
        s.push('\n');
    }
    s.push_str("event: message\n");
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_ids_and_retry() {
        let text = ": comment\nid: 1\nretry: 500\ndata: {\"a\":1}\n\nevent: message\ndata: x\ndata: y\n\nid: 7\n\n";
        let mut r = Reader::new(text.as_bytes());
        let e = r.next_event().unwrap();
        assert_eq!((e.id.as_deref(), e.data.as_str(), e.retry), (Some("1"), "{\"a\":1}", Some(500)));
        assert_eq!(r.next_event().unwrap().data, "x\ny");
        let e = r.next_event().unwrap();
        assert_eq!((e.id.as_deref(), e.data.as_str()), (Some("7"), ""));
        assert!(r.next_event().is_none());
        assert_eq!((r.retry, r.last_id.as_deref()), (Some(500), Some("7")));
    }

    #[test]
    fn frame_round_trips() {
        let f = frame(Some("3"), "a\nb");
        let mut r = Reader::new(f.as_bytes());
        let e = r.next_event().unwrap();
        assert_eq!((e.id.as_deref(), e.data.as_str()), (Some("3"), "a\nb"));
    }
}
