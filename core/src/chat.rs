//! Chat templates: the Jinja templates models ship (tokenizer_config.json's `chat_template`, or a
//! GGUF's `tokenizer.chat_template`), rendered with minijinja the way transformers renders them
//! (trimmed blocks, Python string methods, `raise_exception`, `strftime_now`, Python's
//! `json.dumps` as `tojson`), with the variables `apply_chat_template` passes: the messages,
//! `tools`, `documents`, `add_generation_prompt`, the special tokens and any extra ones
//! (`enable_thinking`).

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

/// What `apply_chat_template` takes besides the messages (transformers' arguments).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatOptions {
    /// End where the assistant's reply begins.
    pub add_generation_prompt: bool,
    /// Tool definitions (JSON schemas), as the template sees them; `None` is Python's None.
    pub tools: Option<serde_json::Value>,
    /// Documents for retrieval-augmented templates; `None` is Python's None.
    pub documents: Option<serde_json::Value>,
    /// Further template variables (`enable_thinking`, `custom_instructions`), over the special
    /// tokens' (`bos_token`, `eos_token`).
    pub extra: serde_json::Map<String, serde_json::Value>,
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

    /// This template's source (a chat_template override keeps the model's special tokens).
    pub fn with_source(&self, source: impl Into<String>) -> ChatTemplate {
        ChatTemplate { source: source.into(), ..self.clone() }
    }

    /// The prompt text for `messages`; with `add_generation_prompt`, ending where the assistant's
    /// reply begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let messages: Vec<serde_json::Value> =
            messages.iter().map(|m| serde_json::json!({ "role": m.role, "content": m.content })).collect();
        self.render_with(&messages, &ChatOptions { add_generation_prompt, ..Default::default() })
    }

    /// The prompt text for `messages` (objects with a `role`, as transformers takes them:
    /// `content` a string or a list of parts, `tool_calls`, ...) with `options`' variables.
    pub fn render_with(&self, messages: &[serde_json::Value], options: &ChatOptions) -> Result<String> {
        check_messages(messages)?;
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
        env.add_filter("tojson", tojson);
        env.add_template("chat", &self.source).map_err(|e| Error::Config(format!("chat template: {e}")))?;
        let template = env.get_template("chat").map_err(|e| Error::Config(format!("chat template: {e}")))?;
        // transformers' order: the special tokens, then the call's extra variables over them.
        let mut vars = serde_json::Map::new();
        vars.insert("bos_token".into(), self.bos_token.clone().into());
        vars.insert("eos_token".into(), self.eos_token.clone().into());
        vars.extend(options.extra.clone());
        vars.insert("messages".into(), serde_json::Value::Array(messages.to_vec()));
        vars.insert("tools".into(), options.tools.clone().unwrap_or_default());
        vars.insert("documents".into(), options.documents.clone().unwrap_or_default());
        vars.insert("add_generation_prompt".into(), options.add_generation_prompt.into());
        let mut out = Bounded(Vec::new());
        template.render_captured_to(minijinja::value::Value::from(minijinja::value::Serde(&vars)), &mut out).map_err(|e| {
            match e.kind() {
                minijinja::ErrorKind::OutOfFuel => Error::Input(format!(
                    "the chat template does too much work (over {CHAT_TEMPLATE_FUEL} steps): it loops or grows without bound"
                )),
                minijinja::ErrorKind::WriteFailure => {
                    Error::Input(format!("the chat template's output is too long (over {MAX_CHAT_PROMPT_BYTES} bytes)"))
                }
                _ => Error::Input(format!("rendering the chat template: {e}")),
            }
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

/// Messages must be objects with a string `role` (a clear error rather than a template's
/// confusing one).
fn check_messages(messages: &[serde_json::Value]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::Input("a chat needs at least one message".into()));
    }
    for (i, m) in messages.iter().enumerate() {
        if !m.is_object() || !m["role"].is_string() {
            return Err(Error::Input(format!("message {i} must be an object with a string `role`, not {m}")));
        }
    }
    Ok(())
}

/// transformers' `tojson` filter: Python's `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, each of which the template may set.
fn tojson(value: minijinja::Value, kwargs: minijinja::value::Kwargs) -> std::result::Result<String, minijinja::Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<minijinja::Value> = kwargs.get("indent")?;
    let separators: Option<minijinja::Value> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => " ".repeat(
                i64::try_from(v.clone()).map_err(|_| bad_arg(format!("tojson: indent must be a number or a string, not {v}")))?.max(0)
                    as usize,
            ),
        }),
    };
    let (item_sep, key_sep) = match separators.filter(|v| !v.is_none()) {
        Some(v) => {
            let parts: Vec<String> = v.try_iter()?.map(|p| p.as_str().map(str::to_string)).collect::<Option<_>>().unwrap_or_default();
            match parts.as_slice() {
                [a, b] => (a.clone(), b.clone()),
                _ => return Err(bad_arg(format!("tojson: separators must be two strings, not {v}"))),
            }
        }
        // Python's defaults: no space at line ends when indenting.
        None => (if indent.is_some() { "," } else { ", " }.to_string(), ": ".to_string()),
    };
    let style = JsonStyle { ensure_ascii: ensure_ascii.unwrap_or(false), indent, item_sep, key_sep, sort_keys: sort_keys.unwrap_or(false) };
    let mut out = String::new();
    style.write(&value, 0, &mut out)?;
    Ok(out)
}

fn bad_arg(message: String) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message)
}

/// Python's json.dumps settings.
struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonStyle {
    fn newline(&self, level: usize, out: &mut String) {
        if let Some(indent) = &self.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(indent);
            }
        }
    }

    fn write(&self, v: &minijinja::Value, level: usize, out: &mut String) -> std::result::Result<(), minijinja::Error> {
        use minijinja::value::ValueKind;
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => out.push_str(&python_number(v)),
            ValueKind::String | ValueKind::Bytes => self.string(v.as_str().unwrap_or_default(), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<minijinja::Value> = v.try_iter()?.collect();
                self.container('[', ']', items.len(), level, out, |i, out| self.write(&items[i], level + 1, out))?;
            }
            ValueKind::Map | ValueKind::Plain => {
                let mut keys: Vec<minijinja::Value> = v.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort_by_key(|k| k.to_string());
                }
                self.container('{', '}', keys.len(), level, out, |i, out| {
                    let key = &keys[i];
                    match key.as_str() {
                        Some(s) => self.string(s, out),
                        None => self.string(&python_key(key), out),
                    }
                    out.push_str(&self.key_sep);
                    self.write(&v.get_item(key)?, level + 1, out)
                })?;
            }
            _ => self.string(&v.to_string(), out),
        }
        Ok(())
    }

    fn container(
        &self,
        open: char,
        close: char,
        n: usize,
        level: usize,
        out: &mut String,
        mut item: impl FnMut(usize, &mut String) -> std::result::Result<(), minijinja::Error>,
    ) -> std::result::Result<(), minijinja::Error> {
        out.push(open);
        if n == 0 {
            out.push(close);
            return Ok(());
        }
        for i in 0..n {
            if i > 0 {
                out.push_str(&self.item_sep);
            }
            self.newline(level + 1, out);
            item(i, out)?;
        }
        self.newline(level, out);
        out.push(close);
        Ok(())
    }

    /// A JSON string as Python writes it: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other
    /// control characters as `\u00XX`, and (ensure_ascii) every non-ASCII one as `\uXXXX`
    /// (surrogate pairs beyond the BMP).
    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && !c.is_ascii()) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{:04x}", u));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A number as Python's json.dumps writes it: integers as they are, floats as `repr` does
/// (the shortest round-tripping digits, `1.0` for integral ones, exponents below 1e-4 and from
/// 1e16 on, written `1e-05`).
fn python_number(v: &minijinja::Value) -> String {
    if v.is_integer() {
        // u64 and i128 values print whole too
        return v.to_string();
    }
    python_float(f64::try_from(v.clone()).unwrap_or(f64::NAN))
}

fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: d.ddde±x.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let plain = format!("{x}");
        if plain.contains('.') { plain } else { format!("{plain}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// A non-string map key as Python's json.dumps writes it.
fn python_key(key: &minijinja::Value) -> String {
    match key.kind() {
        minijinja::value::ValueKind::None => "null".into(),
        minijinja::value::ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
        minijinja::value::ValueKind::Number => python_number(key),
        _ => key.to_string(),
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
