//! A job's reply as it is generated: tokens to text, text to reasoning, content and tool
//! calls (stop strings cut out), each piece sent on the job's channel as it completes.

use crate::chat::TextStream;
use crate::chat_output::{Piece, ReplyParser};
use crate::error::Error;
use crate::loader::tokenizer::GgufTokenizer;
use crate::serve::job::{Event, FinishReason, Job, OutputForm, Usage};

/// What the engine does after a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// A stop string ended the reply.
    Stopped,
    /// The client is gone: free the slot.
    Gone,
}

pub struct ReplyStream {
    text: TextStream,
    parser: ReplyParser,
    calls: usize,
    gone: bool,
}

impl ReplyStream {
    pub fn new(job: &Job) -> ReplyStream {
        let stops = job.stops.clone();
        let parser = match &job.form {
            OutputForm::Text => ReplyParser::plain(stops),
            OutputForm::Chat {
                thinking_opened,
                tools,
                forced,
            } => {
                let mut parser = match tools {
                    Some(tools) => ReplyParser::new(*thinking_opened, stops, tools.clone()),
                    None => ReplyParser::new(*thinking_opened, stops, Vec::new()).without_calls(),
                };
                // The opening the prompt forced is part of the reply being parsed; it
                // completes no piece, so nothing is sent.
                let _ = parser.push(forced);
                parser
            }
        };
        ReplyStream {
            text: TextStream::default(),
            parser,
            calls: 0,
            gone: false,
        }
    }

    /// Feeds one generated token (not an end token).
    pub fn push_token(
        &mut self,
        tokenizer: &GgufTokenizer,
        token: u32,
        job: &Job,
    ) -> Result<Next, Error> {
        let text = self.text.push(tokenizer, token)?;
        Ok(self.push_text(&text, job))
    }

    /// Feeds the reply's next text.
    pub fn push_text(&mut self, text: &str, job: &Job) -> Next {
        let pieces = self.parser.push(text);
        self.send_pieces(pieces, job);
        if self.gone || job.events.is_closed() {
            Next::Gone
        } else if self.parser.stopped() {
            Next::Stopped
        } else {
            Next::Continue
        }
    }

    /// Hands out what the parser held and reports the end: `length` when the token limit or
    /// the context ended it, `tool_calls` when it called a tool, `stop` otherwise.
    pub fn finish(mut self, hit_limit: bool, usage: Usage, job: &Job) {
        let pieces = self.parser.finish();
        self.send_pieces(pieces, job);
        let finish = if self.calls > 0 {
            FinishReason::ToolCalls
        } else if hit_limit && !self.parser.stopped() {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let _ = job.events.send(Event::Done { finish, usage });
    }

    fn send_pieces(&mut self, pieces: Vec<Piece>, job: &Job) {
        for piece in pieces {
            let event = match piece {
                Piece::Reasoning(t) => Event::Reasoning(t),
                Piece::Content(t) => Event::Content(t),
                Piece::ToolCall(c) => {
                    self.calls += 1;
                    Event::ToolCall(c)
                }
            };
            if job.events.send(event).is_err() {
                self.gone = true;
            }
        }
    }
}
