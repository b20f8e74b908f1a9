//! The ROUTING KV namespace, called directly. Metadata and list pages cross as JSON text
//! read and written by serde_json: worker's KV wrapper converts them with
//! serde_wasm_bindgen, a second (de)serializer in the wasm for these few admin calls,
//! and looks up each of the namespace's methods whenever it is bound.

use crate::edge::config_store::{self, KV_BINDING};
use crate::error::GatewayError;
use serde::Deserialize;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

#[wasm_bindgen(inline_js = r#"
export async function getText(kv, key) {
  return await kv.get(key, "text");
}
export async function getWithMetadata(kv, key) {
  const { value, metadata } = await kv.getWithMetadata(key, "text");
  return [value, metadata == null ? null : JSON.stringify(metadata)];
}
export async function listPage(kv, prefix, cursor) {
  const page = await kv.list(cursor == null ? { prefix } : { prefix, cursor });
  const keys = page.keys.map((k) => ({ name: k.name, metadata: k.metadata == null ? null : JSON.stringify(k.metadata) }));
  return JSON.stringify({ keys, list_complete: page.list_complete, cursor: page.cursor });
}
export async function putWithMetadata(kv, key, value, metadata) {
  await kv.put(key, value, { metadata: JSON.parse(metadata) });
}
export async function deleteKey(kv, key) {
  await kv.delete(key);
}
"#)]
extern "C" {
    /// The value as text, null when absent.
    #[wasm_bindgen(js_name = getText)]
    fn get_text_js(kv: &JsValue, key: &str) -> js_sys::Promise;
    /// `[value, metadata as JSON]`, each null when absent.
    #[wasm_bindgen(js_name = getWithMetadata)]
    fn get_with_metadata_js(kv: &JsValue, key: &str) -> js_sys::Promise;
    /// One page of `list({prefix, cursor})` as JSON, each key's metadata as JSON text.
    #[wasm_bindgen(js_name = listPage)]
    fn list_page_js(kv: &JsValue, prefix: &str, cursor: Option<String>) -> js_sys::Promise;
    #[wasm_bindgen(js_name = putWithMetadata)]
    fn put_with_metadata_js(kv: &JsValue, key: &str, value: &str, metadata: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = deleteKey)]
    fn delete_js(kv: &JsValue, key: &str) -> js_sys::Promise;
}

/// One page of a KV list.
#[derive(Deserialize)]
pub struct ListPage {
    pub keys: Vec<ListedKey>,
    pub list_complete: bool,
    pub cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct ListedKey {
    pub name: String,
    /// The metadata as JSON text.
    pub metadata: Option<String>,
}

/// The ROUTING namespace's JS object.
pub fn namespace(env: &Env) -> Result<JsValue, GatewayError> {
    super::binding(env, KV_BINDING).filter(JsValue::is_object).ok_or_else(config_store::not_bound)
}

/// A text value (`None` when absent); `Err` when KV could not be read.
pub async fn get_text(kv: &JsValue, key: &str) -> Result<Option<String>, ()> {
    Ok(JsFuture::from(get_text_js(kv, key)).await.map_err(drop)?.as_string())
}

/// A text value and its metadata as JSON; `Err` when KV could not be read.
pub async fn get_with_metadata(kv: &JsValue, key: &str) -> Result<(Option<String>, Option<String>), ()> {
    let pair: js_sys::Array = JsFuture::from(get_with_metadata_js(kv, key)).await.map_err(drop)?.unchecked_into();
    Ok((pair.get(0).as_string(), pair.get(1).as_string()))
}

pub async fn list_page(kv: &JsValue, prefix: &str, cursor: Option<String>) -> Result<ListPage, ()> {
    let text = JsFuture::from(list_page_js(kv, prefix, cursor)).await.map_err(drop)?.as_string().ok_or(())?;
    crate::json_value::from_str(&text).map_err(drop)
}

pub async fn put_with_metadata(kv: &JsValue, key: &str, value: &str, metadata: &str) -> Result<(), ()> {
    JsFuture::from(put_with_metadata_js(kv, key, value, metadata)).await.map(drop).map_err(drop)
}

pub async fn delete(kv: &JsValue, key: &str) -> Result<(), ()> {
    JsFuture::from(delete_js(kv, key)).await.map(drop).map_err(drop)
}
