//! Conversations keep the model's state across turns: a new turn feeds only its own tokens,
//! and the state it leaves equals a fresh session fed the same tokens at once.

use std::sync::Arc;

use qwen_wgpu::chat::{generate, Conversation, End, Flow};
use qwen_wgpu::loader::gguf::GgufFile;
use qwen_wgpu::loader::synth::{synthetic_model, SynthOptions};
use qwen_wgpu::loader::tokenizer::{ChatTemplate, GgufTokenizer};
use qwen_wgpu::model::algebra::KvDtype;
use qwen_wgpu::runtime::{GpuModel, Sampling, Session, SessionOptions};

use crate::common::{gpu_or_skip, operand_tol, tiny};

/// What a chat test runs on: a synthetic `preset` with its tokenizer and template, and a
/// session of 256 tokens in chunks of 16 with an f32 KV cache.
struct Chat {
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    model: Arc<GpuModel>,
    session: Session,
}

const OPTIONS: SessionOptions = SessionOptions {
    context: 256,
    ubatch: 16,
    kv_dtype: KvDtype::F32,
    all_logits: false,
};

fn chat_on(preset: &str) -> Option<Chat> {
    let config = tiny(preset);
    let bytes = synthetic_model(&config, &SynthOptions::default())
        .unwrap()
        .to_bytes();
    let file = GgufFile::from_bytes(bytes).unwrap();
    let tokenizer = GgufTokenizer::from_gguf(&file).unwrap();
    let template = ChatTemplate::new(tokenizer.chat_template.as_deref().unwrap()).unwrap();
    let gpu = gpu_or_skip()?;
    let model = GpuModel::load(gpu, &file, &config, &OPTIONS, &mut |_, _| {}).unwrap();
    let session = Session::new(model.clone(), OPTIONS).unwrap();
    Some(Chat {
        tokenizer,
        template,
        model,
        session,
    })
}

/// Two turns of greedy chat; the second turn's prompt is only its own tokens, and the logits
/// after it match a fresh session given the whole history in one prefill (1e-4 of the
/// largest logit: the same tokens, grouped into other chunks).
#[test]
fn second_turn_prefills_only_itself() {
    let Some(Chat {
        tokenizer,
        template,
        model,
        mut session,
    }) = chat_on("tiny-qwen35moe")
    else {
        return;
    };
    session.set_sampling(Sampling::greedy(), 0).unwrap();
    let mut conv = Conversation::new(Some("be brief"), false);
    let mut prompts = Vec::new();
    for user in ["hello there", "and again"] {
        let tokens = conv
            .turn_tokens(&mut session, &tokenizer, &template, user)
            .unwrap();
        prompts.push(tokens.len());
        let reply = generate(&mut session, &tokenizer, &tokens, Some(6), &mut |_| {
            Ok(Flow::Continue)
        })
        .unwrap();
        assert!(matches!(reply.end, End::Limit | End::EndToken));
        conv.record(&tokenizer, reply).unwrap();
    }
    let history = session.history().to_vec();
    assert!(
        prompts[1] < history.len() / 2,
        "second turn fed {} of {} tokens",
        prompts[1],
        history.len()
    );
    let held = session.logits().unwrap();
    // f16 operands (a GPU's prefill matmuls) move logits by about 1e-3 with the chunking.
    let tol = operand_tol(&model, 1e-4);
    let mut fresh = Session::new(model, OPTIONS).unwrap();
    fresh.prefill(&history).unwrap();
    let again = fresh.logits().unwrap();
    let scale = again.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = held
        .iter()
        .zip(&again)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff <= tol * scale, "{diff} vs {scale}");
}

/// Every token reaches the model exactly once whatever ended the reply: after a limit the
/// last token is pending and opens the next turn; after a stop from the caller (Ctrl-C),
/// the pipelined step already fed it and the next turn does not bring it again.
#[test]
fn each_token_is_fed_once_whatever_ended_the_reply() {
    let Some(Chat {
        tokenizer,
        template,
        mut session,
        ..
    }) = chat_on("tiny-qwen35")
    else {
        return;
    };
    let mut conv = Conversation::new(None, false);
    let mut expected: Vec<u32> = Vec::new();
    for (user, stop_after) in [("one", None), ("two", Some(3)), ("three", None)] {
        let tokens = conv
            .turn_tokens(&mut session, &tokenizer, &template, user)
            .unwrap();
        if let Some(last) = conv.last.as_ref() {
            // The previous reply's tokens, but a pending one (which `tokens` opens with).
            let fed = last.tokens.len() - usize::from(last.pending.is_some());
            expected.extend(&last.tokens[..fed]);
            if let Some(p) = last.pending {
                assert_eq!(tokens[0], p, "{user}: the pending token opens the turn");
            }
        }
        expected.extend(&tokens);
        let mut pieces = 0;
        let reply = generate(&mut session, &tokenizer, &tokens, Some(6), &mut |_| {
            pieces += 1;
            Ok(match stop_after {
                Some(n) if pieces >= n => Flow::Stop,
                _ => Flow::Continue,
            })
        })
        .unwrap();
        assert!(!session.has_ahead(), "{user}: nothing left in flight");
        let want = if stop_after.is_some() {
            End::Interrupted
        } else {
            End::Limit
        };
        if reply.end != End::EndToken {
            assert_eq!(reply.end, want, "{user}");
            assert_eq!(
                reply.pending.is_some(),
                want == End::Limit,
                "{user}: pending after {want:?}"
            );
        }
        conv.record(&tokenizer, reply).unwrap();
        let last = conv.last.as_ref().unwrap();
        let fed = last.tokens.len() - usize::from(last.pending.is_some());
        let mut now = expected.clone();
        now.extend(&last.tokens[..fed]);
        assert_eq!(session.history(), now.as_slice(), "{user}: the tokens fed");
    }
}
