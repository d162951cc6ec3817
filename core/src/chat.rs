//! Chat templates: the Jinja templates models ship (tokenizer_config.json's `chat_template`, or a
//! GGUF's `tokenizer.chat_template`), rendered with minijinja the way transformers renders them
//! (trimmed blocks, Python string methods, `raise_exception`, `strftime_now`).

use serde::Serialize;

use crate::{Error, Result};

/// The most work a chat template may do in one render, in minijinja's fuel units (about one per
/// instruction, one per 64 bytes allocated): real templates spend thousands on a conversation of
/// megabytes, while a hostile one (nested loops, doubling strings) stops within tens of milliseconds.
pub const CHAT_TEMPLATE_FUEL: u64 = 500_000;
/// The longest prompt a template may produce (millions of tokens: beyond any model's context).
pub const MAX_CHAT_PROMPT_BYTES: usize = 16 << 20;
/// The deepest macro and block nesting a template may reach (real ones stay under 10); deeper
/// recursion is an error rather than a stack overflow.
pub const CHAT_TEMPLATE_RECURSION: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message { role: role.into(), content: content.into() }
    }
}

#[derive(Clone, Debug)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    pub fn new(source: impl Into<String>, bos_token: impl Into<String>, eos_token: impl Into<String>) -> ChatTemplate {
        ChatTemplate { source: source.into(), bos_token: bos_token.into(), eos_token: eos_token.into() }
    }

    /// tokenizer_config.json's `chat_template` (a string, or a list of named templates: the
    /// "default" one) with its BOS and EOS tokens; None without one.
    pub fn from_tokenizer_config(config: &serde_json::Value) -> Option<ChatTemplate> {
        let source = match &config["chat_template"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(list) => {
                list.iter().find(|t| t["name"] == "default").and_then(|t| t["template"].as_str()).map(str::to_string)
            }
            _ => None,
        }?;
        Some(ChatTemplate::new(source, special_token_text(config, "bos_token"), special_token_text(config, "eos_token")))
    }

    /// The prompt text for `messages`; with `add_generation_prompt`, ending where the assistant's
    /// reply begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::Input("a chat needs at least one message".into()));
        }
        let mut env = minijinja::Environment::new();
        // transformers renders with jinja2's trim_blocks and lstrip_blocks.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::Config(format!("chat template syntax: {e}")))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(CHAT_TEMPLATE_FUEL));
        env.set_recursion_limit(CHAT_TEMPLATE_RECURSION);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |format: String| format_today(&format));
        env.add_template("chat", &self.source).map_err(|e| Error::Config(format!("chat template: {e}")))?;
        let template = env.get_template("chat").map_err(|e| Error::Config(format!("chat template: {e}")))?;
        let mut out = Bounded(Vec::new());
        template
            .render_captured_to(
                minijinja::context! {
                    messages => minijinja::value::Value::from(minijinja::value::Serde(messages)),
                    add_generation_prompt => add_generation_prompt,
                    bos_token => &self.bos_token,
                    eos_token => &self.eos_token,
                },
                &mut out,
            )
            .map_err(|e| match e.kind() {
                minijinja::ErrorKind::OutOfFuel => Error::Input(format!(
                    "the chat template does too much work (over {CHAT_TEMPLATE_FUEL} steps): it loops or grows without bound"
                )),
                minijinja::ErrorKind::WriteFailure => {
                    Error::Input(format!("the chat template's output is too long (over {MAX_CHAT_PROMPT_BYTES} bytes)"))
                }
                _ => Error::Input(format!("rendering the chat template: {e}")),
            })?;
        String::from_utf8(out.0).map_err(|_| Error::Input("the chat template's output is not UTF-8".into()))
    }
}

/// The rendered prompt, refusing to grow past MAX_CHAT_PROMPT_BYTES.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_CHAT_PROMPT_BYTES {
            return Err(std::io::Error::other("the prompt is too long"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A special token of tokenizer_config.json (`"</s>"`, or an AddedToken object's `content`);
/// empty when it has none.
pub fn special_token_text(config: &serde_json::Value, key: &str) -> String {
    match &config[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).unwrap_or("").to_string(),
        _ => String::new(),
    }
}

/// Today's date for templates that print it (Llama 3's "Today Date"), formatting the few
/// strftime fields templates use: %d %m %Y %y %b %B.
fn format_today(format: &str) -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0) as i64;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    const MONTHS: [&str; 12] =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    let name = MONTHS[(month - 1) as usize];
    format
        .replace("%d", &format!("{day:02}"))
        .replace("%m", &format!("{month:02}"))
        .replace("%Y", &year.to_string())
        .replace("%y", &format!("{:02}", year % 100))
        .replace("%b", &name[..3])
        .replace("%B", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_template_renders_with_generation_prompt() {
        let source = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'].strip() + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        let t = ChatTemplate::new(source, "", "<|im_end|>");
        let out = t.render(&[Message::new("user", " Hi there ")], true).unwrap();
        assert_eq!(out, "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
        assert!(t.render(&[], true).is_err());
        let failing = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "");
        assert!(failing.render(&[Message::new("user", "x")], true).unwrap_err().to_string().contains("roles must alternate"));
        assert!(ChatTemplate::new("{% if %}", "", "").render(&[Message::new("user", "x")], true).is_err());
    }

    #[test]
    fn today_formats() {
        let s = format_today("%d %b %Y");
        assert_eq!(s.len(), 11, "{s}");
    }
}
