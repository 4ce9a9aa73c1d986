//! A small Server-Sent Events reader over a reqwest response, as a browser's `EventSource`
//! reads the stream: blocks split at blank lines, `id:`, `event:` and `data:` fields.

/// One event that carried data.
#[derive(Debug, Clone)]
pub struct SseFrame {
    /// Its `id:`.
    pub id: String,
    /// Its `event:` name.
    pub event: String,
    /// Its `data:` lines, joined by newlines.
    pub data: String,
}

impl SseFrame {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// Reads events from an open `text/event-stream` response.
pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    /// Reads `response`.
    pub fn new(response: reqwest::Response) -> Self {
        let content_type = response.headers()["content-type"].clone();
        assert_eq!(content_type, "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with data (comments, `retry:` and id-only blocks are skipped); `None`
    /// when the server ended the stream.
    pub async fn next(&mut self) -> Option<SseFrame> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(frame) = parse(&block) {
                    return Some(frame);
                }
            }
            let chunk = self.response.chunk().await.expect("read")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

fn parse(block: &str) -> Option<SseFrame> {
    let (mut id, mut event, mut data) = (String::new(), String::new(), Vec::new());
    for line in block.lines() {
        let (field, value) = line.split_once(": ").unwrap_or((line, ""));
        match field {
            "id" => id = value.to_owned(),
            "event" => event = value.to_owned(),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| SseFrame {
        id,
        event,
        data: data.join("\n"),
    })
}
