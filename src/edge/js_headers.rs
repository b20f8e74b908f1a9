//! Headers across the wasm boundary in one call each way: a `get` or `set` per
//! header is a crossing with its own string conversions, and an answer reads or
//! writes several.

use crate::providers::HeaderNames;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen(inline_js = r#"
const lists = [];
export function headerValues(headers, list, names) {
  const wanted = names === undefined ? lists[list] : (lists[list] = names.split("\n"));
  if (wanted === undefined) return "";
  let values = "";
  for (const name of wanted) {
    const value = headers.get(name);
    values += value === null ? "\0\n" : value + "\n";
  }
  return values;
}
export function headersFrom(lines) {
  const headers = new Headers();
  const parts = lines.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  return headers;
}
"#)]
extern "C" {
    /// The values of a list's names (`\0` for an absent one), a line each. The
    /// names cross once per instance (`names` given), then the list's number alone.
    #[wasm_bindgen(js_name = headerValues)]
    fn header_values(headers: &web_sys::Headers, list: u32, names: Option<&str>) -> String;
    #[wasm_bindgen(js_name = headersFrom, catch)]
    fn headers_from_lines(lines: &str) -> Result<web_sys::Headers, JsValue>;
}

/// What the gateway's handlers read from a client's request: origin, CORS,
/// authentication, the body's type and length, routing and attribution headers.
/// A name outside a list is still answered, by a call of its own: a `get` per name
/// listed is far cheaper in the runtime than iterating every header (clients send
/// dozens: the SDKs' `x-stainless-*`, Cloudflare's `cf-*`; providers as many).
pub static CLIENT_NAMES: HeaderNames = &[
    "origin",
    "access-control-request-headers",
    "authorization",
    "x-api-key",
    "content-type",
    "content-length",
    "x-gateway-region",
    "x-gateway-session",
    "x-gateway-project",
    "x-gateway-agent",
    "x-gateway-tags",
    "anthropic-version",
    "anthropic-beta",
];

/// The JS side caches a list's names under a number, so a read sends only that.
const MAX_LISTS: usize = 32;

thread_local! {
    /// The lists seen by this instance, by number, and whether the JS side holds
    /// each one's names. A few static lists: the client's and one per provider kind.
    static LISTS: std::cell::RefCell<Vec<(HeaderNames, bool)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A list's number and whether its names must go with the read (first use).
fn list_number(names: HeaderNames) -> Option<(u32, bool)> {
    LISTS.with(|lists| {
        let mut lists = lists.borrow_mut();
        // By address first (a static list), then by content (a copy of one).
        let found = lists
            .iter()
            .position(|(known, _)| std::ptr::eq(*known, names))
            .or_else(|| lists.iter().position(|(known, _)| *known == names));
        let at = match found {
            Some(at) => at,
            None if lists.len() < MAX_LISTS => {
                lists.push((names, false));
                lists.len() - 1
            }
            None => return None,
        };
        Some((at as u32, !lists[at].1))
    })
}

fn list_sent(number: u32, held: bool) {
    LISTS.with(|lists| {
        if let Some(entry) = lists.borrow_mut().get_mut(number as usize) {
            entry.1 = held;
        }
    });
}

/// A set of headers with a list's values read in one call.
pub struct HeaderView {
    handle: web_sys::Headers,
    names: HeaderNames,
    values: Vec<Option<String>>,
}

impl HeaderView {
    pub fn read(handle: web_sys::Headers, names: HeaderNames) -> Self {
        let values = list_number(names).and_then(|(number, send_names)| {
            let joined = send_names.then(|| names.join("\n"));
            let lines = header_values(&handle, number, joined.as_deref());
            let values = parse_values(&lines, names.len());
            // Not what was asked (the JS side lost the list): it is sent again next time.
            list_sent(number, values.is_some());
            values
        });
        let values = values.unwrap_or_else(|| names.iter().map(|name| get(&handle, name)).collect());
        Self { handle, names, values }
    }

    /// As `Headers.get` answers: names match whatever their case.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.names.iter().position(|listed| listed.eq_ignore_ascii_case(name)) {
            Some(at) => self.values[at].clone(),
            None => get(&self.handle, name),
        }
    }
}

fn get(headers: &web_sys::Headers, name: &str) -> Option<String> {
    headers.get(name).ok().flatten()
}

/// `count` lines, each a value or `\0` for an absent header.
fn parse_values(lines: &str, count: usize) -> Option<Vec<Option<String>>> {
    let values: Vec<Option<String>> =
        lines.split_terminator('\n').map(|line| (line != "\0").then(|| line.to_string())).collect();
    (values.len() == count).then_some(values)
}

/// The client's request headers (see `CLIENT_NAMES`): a handler looks up several
/// (authentication, the body's type and length, routing and attribution headers).
pub struct ClientHeaders(HeaderView);

impl ClientHeaders {
    pub fn of(req: &worker::Request) -> Self {
        Self(HeaderView::read(req.headers().0.clone(), CLIENT_NAMES))
    }

    /// As `Headers.get` answers: names match whatever their case.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name)
    }
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
