//! The GGUF tokenizer: the real Qwen3.5 vocabulary against tiktoken (goldens from
//! tools/tokenizer_goldens.py), round trips, special tokens, the byte vocabulary of the
//! tiny models, the chat template, and errors for vocabularies we cannot read.

use std::sync::OnceLock;

use qwen_wgpu::error::TokenizerError;
use qwen_wgpu::loader::gguf::MetaValue;
use qwen_wgpu::loader::gguf_writer::GgufWriter;
use qwen_wgpu::loader::tokenizer::{ChatMessage, ChatTemplate, GgufTokenizer};
use qwen_wgpu::loader::vocab::{
    merges_from_ranks, parse_tiktoken, write_qwen35_vocabulary, QWEN35_TIKTOKEN,
};
use qwen_wgpu::loader::vocab::{write_byte_vocabulary, CHATML_TEMPLATE};
use qwen_wgpu::loader::GgufFile;

fn from_writer(w: &GgufWriter) -> Result<GgufTokenizer, TokenizerError> {
    GgufTokenizer::from_gguf(&GgufFile::from_bytes(w.to_bytes()).unwrap())
}

fn qwen35_writer() -> GgufWriter {
    let ranks = parse_tiktoken(QWEN35_TIKTOKEN).unwrap();
    let mut w = GgufWriter::new();
    write_qwen35_vocabulary(&mut w, &ranks, 248_320).unwrap();
    w
}

/// Built once: merging 248k tokens and building the BPE takes a few seconds.
fn qwen35() -> &'static GgufTokenizer {
    static TOKENIZER: OnceLock<GgufTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| from_writer(&qwen35_writer()).unwrap())
}

fn data(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/data/tokenizer/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn qwen35_ids_match_tiktoken_on_the_corpus() {
    let corpus = data("corpus.json");
    let goldens = data("goldens.json");
    let tk = qwen35();
    for (text, expect) in corpus
        .as_array()
        .unwrap()
        .iter()
        .zip(goldens["ids"].as_array().unwrap())
    {
        let text = text.as_str().unwrap();
        let expect: Vec<u32> = expect
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tk.encode(text).unwrap(), expect, "{text:?}");
    }
    // llama.cpp's ids for this string, as its own test records them.
    assert_eq!(
        tk.encode("Hello! 毕老师！1 + 1 = 2").unwrap(),
        [9419, 0, 220, 97169, 97621, 6115, 16, 478, 220, 16, 283, 220, 17]
    );
}

#[test]
fn qwen35_round_trips_and_special_tokens() {
    let tk = qwen35();
    for text in data("corpus.json").as_array().unwrap() {
        let text = text.as_str().unwrap();
        assert_eq!(tk.decode(&tk.encode(text).unwrap()).unwrap(), text);
    }
    assert_eq!(tk.vocab_size(), 248_320);
    assert_eq!(tk.encode("<|im_start|>").unwrap(), [248_045]);
    assert_eq!(tk.encode("<think>").unwrap(), [248_068]);
    assert_eq!(tk.encode("</tool_call>").unwrap(), [248_059]);
    assert_eq!(tk.eos, 248_046);
    assert_eq!(tk.bos, Some(248_044));
    assert!(!tk.add_bos);
    assert!(tk.is_end_of_generation(248_046) && tk.is_end_of_generation(248_044));
    assert!(!tk.is_end_of_generation(248_045));
    // A special written inside text is one token, with the text around it tokenized normally.
    let ids = tk.encode("a<|im_end|>b").unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], 248_046);
}

#[test]
fn merges_are_recovered_from_ranks() {
    let ranks = parse_tiktoken(QWEN35_TIKTOKEN).unwrap();
    assert_eq!(ranks.len(), 248_044);
    let multi_byte = ranks.iter().filter(|t| t.len() > 1).count();
    let merges = merges_from_ranks(&ranks);
    // 232 ranked tokens end in more than two parts: BPE cannot build them, they get no merge.
    assert_eq!(merges.len(), multi_byte - 232);
    // Every merge joins two lower-ranked tokens into the next mergeable token's bytes.
    let first_multi = ranks.iter().position(|t| t.len() > 1).unwrap();
    let (l, r) = merges[0];
    assert_eq!(
        [ranks[l].as_slice(), &ranks[r]].concat(),
        ranks[first_multi]
    );
}

#[test]
fn byte_vocabulary_of_the_tiny_models() {
    let mut w = GgufWriter::new();
    write_byte_vocabulary(&mut w, 263).unwrap();
    let tk = from_writer(&w).unwrap();
    assert_eq!(tk.vocab_size(), 263);
    assert_eq!(tk.encode(" the").unwrap(), [258]);
    assert_eq!(tk.encode("the").unwrap(), [116, 257]);
    assert_eq!(tk.encode("<|im_start|>hi").unwrap(), [261, 104, 105]);
    assert_eq!(tk.eos, 262);
    let text = "héllo 🌍\n";
    assert_eq!(tk.decode(&tk.encode(text).unwrap()).unwrap(), text);
}

#[test]
fn chat_template_renders_chatml_with_thinking_switch() {
    let t = ChatTemplate::new(CHATML_TEMPLATE).unwrap();
    let messages = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Hi!"),
    ];
    let base = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(t.render(&messages, true, true).unwrap(), base);
    assert_eq!(
        t.render(&messages, true, false).unwrap(),
        format!("{base}<think>\n\n</think>\n\n")
    );
    let prompt = t.render(&messages, true, false).unwrap();
    let ids = qwen35().encode(&prompt).unwrap();
    assert_eq!(ids[0], 248_045);
    assert!(ids.contains(&248_068) && ids.contains(&248_069));
    // A template that raises is an error naming its message, not a panic.
    let t = ChatTemplate::new("{{ raise_exception('no tools here') }}").unwrap();
    assert!(t
        .render(&messages, true, true)
        .unwrap_err()
        .to_string()
        .contains("no tools here"));
    // Python string methods that Qwen's templates use.
    let t = ChatTemplate::new("{{ messages[0].content.startswith('Be') }}").unwrap();
    assert_eq!(t.render(&messages, false, true).unwrap(), "True");
    assert!(ChatTemplate::new("{% if %}").is_err());
}

#[test]
fn unreadable_vocabularies_are_named() {
    let mut w = GgufWriter::new();
    write_byte_vocabulary(&mut w, 263).unwrap();
    w.set("tokenizer.ggml.pre", MetaValue::String("llama-bpe".into()));
    assert!(matches!(from_writer(&w), Err(TokenizerError::UnsupportedPre(p)) if p == "llama-bpe"));

    let mut w = GgufWriter::new();
    write_byte_vocabulary(&mut w, 263).unwrap();
    w.set("tokenizer.ggml.model", MetaValue::String("llama".into()));
    assert!(matches!(
        from_writer(&w),
        Err(TokenizerError::UnsupportedModel(_))
    ));

    let mut w = GgufWriter::new();
    write_byte_vocabulary(&mut w, 263).unwrap();
    w.set(
        "tokenizer.ggml.merges",
        MetaValue::Array(qwen_wgpu::loader::gguf::MetaArray::String(vec![
            "Ġ zz".into()
        ])),
    );
    assert!(matches!(
        from_writer(&w),
        Err(TokenizerError::BadMerge { index: 0, .. })
    ));

    let mut w = GgufWriter::new();
    write_byte_vocabulary(&mut w, 263).unwrap();
    w.set("tokenizer.ggml.eos_token_id", MetaValue::U32(999));
    let e = from_writer(&w).err().unwrap().to_string();
    assert!(e.contains("999") && e.contains("263"), "{e}");

    let mut w = GgufWriter::new();
    write_byte_vocabulary(&mut w, 263).unwrap();
    w.remove("tokenizer.ggml.tokens");
    assert!(
        matches!(from_writer(&w), Err(TokenizerError::MissingKey(k)) if k == "tokenizer.ggml.tokens")
    );
}

/// The synthetic models' template renders tools (as `json.dumps` writes them, keys in the
/// client's order), an assistant's tool calls (arguments by parameter, strings raw and the
/// rest as JSON) and the tool results as Qwen3.5 lays them out, and keeps reasoning only
/// after the last user message.
#[test]
fn chat_template_renders_tools_calls_and_results() {
    use qwen_wgpu::loader::tokenizer::{TemplateFunction, TemplateToolCall};
    let t = ChatTemplate::new(CHATML_TEMPLATE).unwrap();
    let tool = serde_json::json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let call = TemplateToolCall {
        id: "c1".into(),
        kind: "function",
        function: TemplateFunction {
            name: "get_weather".into(),
            arguments: serde_json::json!({"city": "Paris", "days": 3}),
        },
    };
    let messages = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage {
            reasoning_content: Some("old thoughts".into()),
            ..ChatMessage::new("assistant", "Earlier.")
        },
        ChatMessage::new("user", "Weather in Paris?"),
        ChatMessage {
            reasoning_content: Some("I should look it up.".into()),
            tool_calls: vec![call],
            ..ChatMessage::new("assistant", "")
        },
        ChatMessage {
            tool_call_id: Some("c1".into()),
            ..ChatMessage::new("tool", "{\"forecast\": \"sunny\"}")
        },
        ChatMessage::new("tool", "second result"),
    ];
    let got = t.render_with_tools(&messages, &[tool], true, true).unwrap();
    let want = "<|im_start|>system\nBe brief.\n\n# Tools\n\nThese functions are available, one JSON signature a line:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}\n</tools>\n\nCall one by writing:\n<tool_call>\n<function=NAME>\n<parameter=ARGUMENT>\nVALUE\n</parameter>\n</function>\n</tool_call>\nwith one parameter element per argument and every required argument given. Calls may follow one another; after the last, stop and wait for the results.<|im_end|>\n\
<|im_start|>assistant\nEarlier.<|im_end|>\n\
<|im_start|>user\nWeather in Paris?<|im_end|>\n\
<|im_start|>assistant\n<think>\nI should look it up.\n</think>\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call><|im_end|>\n\
<|im_start|>user\n<tool_response>\n{\"forecast\": \"sunny\"}\n</tool_response>\n<tool_response>\nsecond result\n</tool_response><|im_end|>\n\
<|im_start|>assistant\n";
    assert_eq!(got, want, "\n--- got ---\n{got}\n--- want ---\n{want}");
    // Without tools the template is plain ChatML, as before.
    let plain = t.render(&messages[..3], true, false).unwrap();
    assert!(!plain.contains("# Tools") && plain.ends_with("<think>\n\n</think>\n\n"));
}
