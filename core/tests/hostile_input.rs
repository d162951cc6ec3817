//! Hostile input found by fuzzing (scripts/fuzz.sh, FUZZING.md) or built to the same end: each
//! parser of untrusted bytes answers with a clear error, never a panic, a hang or an allocation of
//! what a header merely claims.

use std::time::{Duration, Instant};

use webformers::Error;
use webformers::chat::{ChatTemplate, Message};

/// Runs `f` and checks it took under `limit` (a hostile input must be refused quickly).
fn quickly<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < limit, "took {:?}, over {limit:?}", start.elapsed());
    out
}

/// The rendered prompt's length (a failing test must not print megabytes).
fn render(template: &str) -> webformers::Result<usize> {
    ChatTemplate::new(template, "<s>", "</s>").render(&[Message::new("user", "Hi")], true).map(|s| s.len())
}

#[test]
fn a_chat_template_that_recurses_forever_is_an_error() {
    let e = quickly(Duration::from_secs(5), || render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")).unwrap_err();
    assert!(matches!(e, Error::Input(_)) && e.to_string().contains("recursion"), "{e}");
}

#[test]
fn a_chat_template_that_loops_too_long_runs_out_of_fuel() {
    let e = quickly(Duration::from_secs(10), || {
        render("{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}")
    })
    .unwrap_err();
    assert!(e.to_string().contains("too much work"), "{e}");
}

#[test]
fn a_chat_template_that_builds_a_huge_string_is_an_error() {
    for (t, why) in [
        ("{% set s = 'x' * 10000000 %}{% for i in range(10) %}{{ s }}{% endfor %}", "too long"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
            "too much work",
        ),
    ] {
        let e = quickly(Duration::from_secs(10), || render(t)).unwrap_err();
        assert!(e.to_string().contains(why), "{t}: {e}");
    }
}

#[test]
fn a_long_conversation_still_renders_within_the_fuel() {
    // 200 turns of 5 KB each (a megabyte of prompt) through a ChatML template.
    let template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'].strip() + '<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    let turn = "word ".repeat(1000);
    let messages: Vec<Message> = (0..200).map(|i| Message::new(if i % 2 == 0 { "user" } else { "assistant" }, turn.clone())).collect();
    let out = ChatTemplate::new(template, "", "").render(&messages, true).unwrap();
    let expected: usize = messages.iter().map(|m| format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content.trim()).len()).sum();
    assert_eq!(out.len(), expected + "<|im_start|>assistant\n".len());
}
