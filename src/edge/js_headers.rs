//! Headers across the wasm boundary in one call each way: a `get` or `set` per
//! header is a crossing with its own string conversions, and an answer reads or
//! writes several.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(inline_js = r#"
export function headerLines(headers) {
  let lines = "";
  for (const [name, value] of headers) lines += name + "\n" + value + "\n";
  return lines;
}
export function headersFrom(lines) {
  const headers = new Headers();
  const parts = lines.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  return headers;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = headerLines)]
    fn header_lines(headers: &web_sys::Headers) -> String;
    #[wasm_bindgen(js_name = headersFrom, catch)]
    fn headers_from_lines(lines: &str) -> Result<web_sys::Headers, JsValue>;
}

/// The client's request headers, read in one call when the request arrives: a
/// handler looks up several (authentication, the body's type and length, routing
/// and attribution headers), each a crossing with its own string conversions.
pub struct ClientHeaders(Vec<(String, String)>);

impl ClientHeaders {
    pub fn of(req: &worker::Request) -> Self {
        Self(all(&req.headers().0))
    }

    /// As `Headers.get` answers: names match whatever their case.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    }
}

/// Every header (names lowercase, repeated ones combined as `get` gives them).
pub fn all(headers: &web_sys::Headers) -> Vec<(String, String)> {
    let lines = header_lines(headers);
    let mut lines = lines.split('\n');
    std::iter::from_fn(|| Some((lines.next()?.to_string(), lines.next()?.to_string()))).collect()
}

/// New headers with these values: in one call when every value can go in a line,
/// else one by one, leaving out a value the runtime refuses. The flag says whether
/// every value was set; `None` when no headers could be made.
pub fn build(pairs: &[(&str, &str)]) -> Option<(web_sys::Headers, bool)> {
    if let Some(batched) = from_pairs(pairs) {
        return Some((batched, true));
    }
    let headers = web_sys::Headers::new().ok()?;
    let all_set = pairs.iter().fold(true, |all, (name, value)| headers.set(name, value).is_ok() && all);
    Some((headers, all_set))
}

/// The batched call, when every value can go in a line (a line break or a character
/// the runtime refuses is never batched); `None` when it cannot or failed.
fn from_pairs(pairs: &[(&str, &str)]) -> Option<web_sys::Headers> {
    let mut lines = String::new();
    for &(name, value) in pairs {
        if !value.bytes().all(|b| b.is_ascii() && !matches!(b, b'\n' | b'\r' | 0)) {
            return None;
        }
        lines.push_str(name);
        lines.push('\n');
        lines.push_str(value);
        lines.push('\n');
    }
    headers_from_lines(&lines).ok()
}
