//! What a chat reply's text holds, parsed as it streams: reasoning (`<think>` ..
//! `</think>`), content, and tool calls (`<tool_call>` .. `</tool_call>`), with stop
//! strings cut out wherever they fall across token boundaries.
//!
//! Qwen3.5 writes a call as `<function=NAME>` with one `<parameter=KEY>` element per
//! argument, its value raw text that the tool's JSON Schema types; Qwen3 (qwen3moe) writes
//! one JSON object `{"name": .., "arguments": {..}}`. Both are read. A call that parses as
//! neither comes back as content, never as an error: the model wrote it, the client sees
//! it.

use serde_json::{Map, Value};

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";
const CALL_OPEN: &str = "<tool_call>";
const CALL_CLOSE: &str = "</tool_call>";

/// One piece of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Reasoning(String),
    Content(String),
    ToolCall(ToolCall),
}

/// A parsed tool call: the function's name and its arguments as a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// A tool the model was offered: its name and the JSON Schema of its parameters (which
/// types the raw values of Qwen3.5's `<parameter=..>` elements).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub parameters: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Reasoning,
    Content,
    /// Inside `<tool_call>`, the call's text collected until the close.
    Call,
}

/// Splits a reply into [`Piece`]s as its text arrives.
pub struct ReplyParser {
    part: Part,
    /// Text not yet handed out: it may be the start of a tag or of a stop string.
    held: String,
    /// The text of the tool call being read.
    call: String,
    stops: Vec<String>,
    tools: Vec<ToolSpec>,
    /// Content has started (leading newlines after `</think>` are dropped before it).
    content_started: bool,
    /// Reasoning has started (the newline after `<think>` is dropped before it).
    reasoning_started: bool,
    stopped: bool,
    /// `<tool_call>` opens a call (not when no tools were offered, or calls were refused).
    calls: bool,
    /// `<think>` opens reasoning (not for a raw completion).
    reasoning: bool,
}

impl ReplyParser {
    /// A parser for a reply that starts inside reasoning when `thinking` (the template
    /// opened `<think>` in the generation prompt), ending at any of `stops`, its tool calls
    /// typed by `tools`.
    pub fn new(thinking: bool, stops: Vec<String>, tools: Vec<ToolSpec>) -> ReplyParser {
        ReplyParser {
            part: if thinking {
                Part::Reasoning
            } else {
                Part::Content
            },
            held: String::new(),
            call: String::new(),
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            tools,
            content_started: false,
            reasoning_started: false,
            stopped: false,
            calls: true,
            reasoning: true,
        }
    }

    /// A parser that reads `<tool_call>` as text: no tools were offered, or the request
    /// said `tool_choice: none`.
    pub fn without_calls(mut self) -> ReplyParser {
        self.calls = false;
        self
    }

    /// A parser for raw text (a completion): stop strings only, every tag kept as text.
    pub fn plain(stops: Vec<String>) -> ReplyParser {
        let mut parser = ReplyParser::new(false, stops, Vec::new()).without_calls();
        parser.reasoning = false;
        // Raw text is handed out as written, leading newlines included.
        parser.content_started = true;
        parser
    }

    /// Whether a stop string has ended the reply (what follows it is dropped).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds the reply's next text; returns the pieces it completes.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        if self.stopped {
            return out;
        }
        self.held.push_str(text);
        self.drain(&mut out, false);
        out
    }

    /// The end of the reply: hands out what was held back (an unclosed tool call as
    /// content, reasoning never closed as reasoning).
    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        if !self.stopped {
            self.drain(&mut out, true);
        }
        if self.part == Part::Call {
            let text = format!("{CALL_OPEN}{}", std::mem::take(&mut self.call));
            self.emit_content(&mut out, text);
            self.part = Part::Content;
        }
        out
    }

    /// Hands out everything in `held` that cannot be the start of a tag or stop string
    /// (all of it at the end), switching parts at tags.
    fn drain(&mut self, out: &mut Vec<Piece>, end: bool) {
        loop {
            if let Some(at) = self.first_stop() {
                let before: String = self.held[..at].to_string();
                // A tag before the stop is handled first.
                if self.next_tag(&before).is_none() {
                    self.emit(out, before);
                    self.held.clear();
                    self.stopped = true;
                    return;
                }
            }
            match self.next_tag(&self.held) {
                Some((at, tag)) => {
                    let mut before = &self.held[..at];
                    if tag == THINK_CLOSE {
                        // The newlines that close a reasoning block are not reasoning.
                        before = before.trim_end_matches('\n');
                    }
                    let before = before.to_string();
                    self.emit(out, before);
                    self.held.drain(..at + tag.len());
                    self.switch(out, tag);
                }
                None => {
                    let keep = if end { 0 } else { self.held_back() };
                    let cut = self.held.len() - keep;
                    let text = self.held[..cut].to_string();
                    self.held.drain(..cut);
                    self.emit(out, text);
                    return;
                }
            }
        }
    }

    /// The tags that change the part from the current one.
    fn tags(&self) -> &'static [&'static str] {
        match (self.part, self.calls, self.reasoning) {
            (Part::Reasoning, _, _) => &[THINK_CLOSE, THINK_OPEN],
            (Part::Content, true, true) => &[CALL_OPEN, THINK_OPEN],
            (Part::Content, true, false) => &[CALL_OPEN],
            (Part::Content, false, true) => &[THINK_OPEN],
            (Part::Content, false, false) => &[],
            (Part::Call, _, _) => &[CALL_CLOSE],
        }
    }

    /// The first tag of the current part in `text`: (byte offset, tag).
    fn next_tag(&self, text: &str) -> Option<(usize, &'static str)> {
        self.tags()
            .iter()
            .filter_map(|tag| text.find(tag).map(|at| (at, *tag)))
            .min_by_key(|&(at, _)| at)
    }

    /// Where the first stop string in `held` starts, outside a tool call.
    fn first_stop(&self) -> Option<usize> {
        if self.part == Part::Call {
            return None;
        }
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
    }

    /// Bytes at the end of `held` that may begin a tag or a stop string, and in reasoning
    /// the newlines that may precede `</think>`.
    fn held_back(&self) -> usize {
        let keep = self.held_back_patterns();
        if self.part != Part::Reasoning {
            return keep;
        }
        let rest = &self.held[..self.held.len() - keep];
        keep + rest.len() - rest.trim_end_matches('\n').len()
    }

    fn held_back_patterns(&self) -> usize {
        let stops = if self.part == Part::Call {
            &[][..]
        } else {
            &self.stops[..]
        };
        let candidates = self
            .tags()
            .iter()
            .copied()
            .chain(stops.iter().map(String::as_str));
        let mut keep = 0;
        for pattern in candidates {
            for (i, _) in self.held.char_indices() {
                let tail = &self.held[i..];
                if tail.len() < pattern.len() && pattern.starts_with(tail) {
                    keep = keep.max(tail.len());
                    break;
                }
            }
        }
        keep
    }

    fn switch(&mut self, out: &mut Vec<Piece>, tag: &str) {
        match (self.part, tag) {
            // A repeated `<think>` at the start of reasoning, or one the model opens itself.
            (_, THINK_OPEN) => {
                self.part = Part::Reasoning;
                self.reasoning_started = false;
            }
            (Part::Reasoning, THINK_CLOSE) => {
                self.part = Part::Content;
                self.content_started = false;
            }
            (Part::Content, CALL_OPEN) => self.part = Part::Call,
            (Part::Call, CALL_CLOSE) => {
                let text = std::mem::take(&mut self.call);
                match parse_call(&text, &self.tools) {
                    Some(call) => out.push(Piece::ToolCall(call)),
                    None => {
                        let raw = format!("{CALL_OPEN}{text}{CALL_CLOSE}");
                        self.emit_content(out, raw);
                    }
                }
                self.part = Part::Content;
            }
            _ => {}
        }
    }

    fn emit(&mut self, out: &mut Vec<Piece>, text: String) {
        if text.is_empty() {
            return;
        }
        match self.part {
            Part::Reasoning => {
                let text = if self.reasoning_started {
                    text
                } else {
                    text.trim_start_matches('\n').to_string()
                };
                if !text.is_empty() {
                    self.reasoning_started = true;
                    push_piece(out, Piece::Reasoning(text));
                }
            }
            Part::Content => self.emit_content(out, text),
            Part::Call => self.call.push_str(&text),
        }
    }

    fn emit_content(&mut self, out: &mut Vec<Piece>, text: String) {
        let text = if self.content_started {
            text
        } else {
            text.trim_start_matches('\n').to_string()
        };
        if text.is_empty() {
            return;
        }
        self.content_started = true;
        push_piece(out, Piece::Content(text));
    }
}

/// Adds `piece`, joining it to the last one when both are text of the same part.
fn push_piece(out: &mut Vec<Piece>, piece: Piece) {
    match (out.last_mut(), piece) {
        (Some(Piece::Reasoning(a)), Piece::Reasoning(b)) => a.push_str(&b),
        (Some(Piece::Content(a)), Piece::Content(b)) => a.push_str(&b),
        (_, piece) => out.push(piece),
    }
}

/// The call in the text between `<tool_call>` and `</tool_call>`, in Qwen3.5's element form
/// or Qwen3's JSON form.
pub fn parse_call(text: &str, tools: &[ToolSpec]) -> Option<ToolCall> {
    let text = text.trim();
    if text.starts_with('{') {
        return parse_json_call(text);
    }
    parse_element_call(text, tools)
}

/// `{"name": "f", "arguments": {..}}` (arguments may also come as a JSON string).
fn parse_json_call(text: &str) -> Option<ToolCall> {
    let value: Value = serde_json::from_str(text).ok()?;
    let name = value.get("name")?.as_str()?.to_string();
    let arguments = match value.get("arguments") {
        None => Value::Object(Map::new()),
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(v) => v.clone(),
    };
    arguments
        .is_object()
        .then_some(ToolCall { name, arguments })
}

/// `<function=f>` then `<parameter=k>` value `</parameter>` elements, then `</function>`.
fn parse_element_call(text: &str, tools: &[ToolSpec]) -> Option<ToolCall> {
    let rest = text.strip_prefix("<function=")?;
    let (name, mut rest) = rest.split_once('>')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let schema = tools
        .iter()
        .find(|t| t.name == name)
        .and_then(|t| t.parameters.get("properties"));
    let mut arguments = Map::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("</function>") {
            return after.trim().is_empty().then(|| ToolCall {
                name: name.to_string(),
                arguments: Value::Object(arguments),
            });
        }
        let body = rest.strip_prefix("<parameter=")?;
        let (key, body) = body.split_once('>')?;
        let (value, after) = body.split_once("</parameter>")?;
        // The template puts the value on lines of its own.
        let value = value.strip_prefix('\n').unwrap_or(value);
        let value = value.strip_suffix('\n').unwrap_or(value);
        let key = key.trim().to_string();
        let ty = schema.and_then(|s| s.get(&key)).and_then(|p| p.get("type"));
        arguments.insert(key, typed(value, ty));
        rest = after;
    }
}

/// A raw parameter value as JSON: a string where the schema says string (or says
/// nothing the value parses as), else the value read as JSON when it is.
fn typed(value: &str, ty: Option<&Value>) -> Value {
    let wants_string = match ty {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().all(|t| t == "string"),
        _ => false,
    };
    if wants_string {
        return Value::String(value.to_string());
    }
    serde_json::from_str(value.trim()).unwrap_or_else(|_| Value::String(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn weather() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "get_weather".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "units": {"type": "string"},
                    "detail": {"type": "object"}
                }
            }),
        }]
    }

    /// Feeds `text` in pieces of `step` bytes (on character boundaries) and joins the
    /// pieces of each kind.
    fn run(parser: &mut ReplyParser, text: &str, step: usize) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut chunk = String::new();
        for c in text.chars() {
            chunk.push(c);
            if chunk.len() >= step {
                for p in parser.push(&chunk) {
                    push_piece(&mut out, p);
                }
                chunk.clear();
            }
        }
        for p in parser.push(&chunk) {
            push_piece(&mut out, p);
        }
        for p in parser.finish() {
            push_piece(&mut out, p);
        }
        out
    }

    #[test]
    fn reasoning_content_and_a_qwen35_call_in_any_chunking() {
        let text = "Let me check.\n</think>\n\nI'll look it up.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nSan Francisco\n</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=detail>\n{\"wind\": true}\n</parameter>\n</function>\n</tool_call>";
        for step in [1, 2, 3, 5, 7, 1000] {
            let mut parser = ReplyParser::new(true, vec![], weather());
            let got = run(&mut parser, text, step);
            assert_eq!(
                got,
                vec![
                    Piece::Reasoning("Let me check.".into()),
                    Piece::Content("I'll look it up.\n".into()),
                    Piece::ToolCall(ToolCall {
                        name: "get_weather".into(),
                        arguments: json!({"city": "San Francisco", "days": 3, "detail": {"wind": true}}),
                    }),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn qwen3_json_calls_and_strings_kept_as_the_schema_says() {
        let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>\n<function=get_weather>\n<parameter=units>\n42\n</parameter>\n</function>\n</tool_call>";
        let mut parser = ReplyParser::new(false, vec![], weather());
        let got = run(&mut parser, text, 4);
        assert_eq!(
            got,
            vec![
                Piece::ToolCall(ToolCall {
                    name: "get_weather".into(),
                    arguments: json!({"city": "Oslo"}),
                }),
                Piece::ToolCall(ToolCall {
                    name: "get_weather".into(),
                    arguments: json!({"units": "42"}),
                }),
            ]
        );
    }

    #[test]
    fn a_call_that_does_not_parse_or_close_comes_back_as_content() {
        let bad =
            "Sure <tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</tool_call> done";
        let mut parser = ReplyParser::new(false, vec![], weather());
        assert_eq!(
            run(&mut parser, bad, 3),
            vec![Piece::Content(
                "Sure <tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</tool_call> done"
                    .into()
            )]
        );
        let unclosed = "x <tool_call>{\"name\": \"f\"";
        let mut parser = ReplyParser::new(false, vec![], vec![]);
        assert_eq!(
            run(&mut parser, unclosed, 2),
            vec![Piece::Content("x <tool_call>{\"name\": \"f\"".into())]
        );
    }

    #[test]
    fn stop_strings_across_chunks_are_never_emitted() {
        for step in [1, 2, 4, 100] {
            let mut parser = ReplyParser::new(false, vec!["END".into(), "\n\n\n".into()], vec![]);
            let got = run(&mut parser, "one E two EN three END four", step);
            assert_eq!(
                got,
                vec![Piece::Content("one E two EN three ".into())],
                "step {step}"
            );
            assert!(parser.stopped());
        }
        // A held-back prefix that turns out not to be a stop is handed out.
        let mut parser = ReplyParser::new(false, vec!["STOP".into()], vec![]);
        assert_eq!(parser.push("ab ST"), vec![Piece::Content("ab ".into())]);
        assert_eq!(parser.push("AY"), vec![Piece::Content("STAY".into())]);
        assert!(!parser.stopped());
    }

    #[test]
    fn thinking_off_reads_everything_as_content_and_multibyte_text_survives() {
        let mut parser = ReplyParser::new(false, vec!["。".into()], vec![]);
        let got = run(&mut parser, "\n\n你好 <b>世界</b>。后面", 1);
        assert_eq!(got, vec![Piece::Content("你好 <b>世界</b>".into())]);
        // A model that opens its own reasoning block.
        let mut parser = ReplyParser::new(false, vec![], vec![]);
        let got = run(&mut parser, "<think>hmm</think>\n\nyes", 3);
        assert_eq!(
            got,
            vec![Piece::Reasoning("hmm".into()), Piece::Content("yes".into())]
        );
    }
}
