//! Content parts (text, images, audio, files) as Gemini parts.

use super::invalid;
use crate::error::GatewayError;
use crate::json;
use serde_json::{Map, Value};

/// One OpenAI content part as a Gemini part (`None` for an empty text).
/// `cache_control` markers are dropped: Gemini caches implicitly.
pub(super) fn content_part(part: &Value, param: String) -> Result<Option<Value>, GatewayError> {
    match part.get("type").and_then(Value::as_str) {
        Some("text" | "input_text") => Ok(text_part(part_text(part, &param)?)),
        Some("refusal") => Ok(part.get("refusal").and_then(Value::as_str).and_then(text_part)),
        Some("image_url") => {
            let url = part
                .get("image_url")
                .and_then(|image| image.get("url").or(Some(image)))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    invalid(
                        "invalid_type",
                        "An image_url part needs 'image_url.url'.",
                        format!("{param}.image_url.url"),
                    )
                })?;
            url_part(url, format!("{param}.image_url.url")).map(Some)
        }
        Some("input_audio") => audio_part(part, param).map(Some),
        Some("file") => file_part(part, param).map(Some),
        other => Err(invalid(
            "unsupported_content",
            format!("Content part type {:?} is not supported for Gemini targets.", other.unwrap_or("(missing)")),
            format!("{param}.type"),
        )),
    }
}

/// A Gemini text part (`None` for an empty text).
pub(super) fn text_part(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

/// The `text` of an OpenAI text part.
pub(super) fn part_text<'a>(part: &'a Value, param: &str) -> Result<&'a str, GatewayError> {
    part.get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("invalid_type", "A text content part needs a string 'text'.", format!("{param}.text")))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// `data:` URLs travel inline (`inlineData`); http(s) URLs go as `fileData.fileUri`,
/// which the Gemini API fetches itself (public and pre-signed URLs, as well as Files
/// API URIs), with the media type guessed from the path where it can be.
fn url_part(url: &str, param: String) -> Result<Value, GatewayError> {
    if starts_with_ignore_case(url, "data:") {
        return inline_from_data_url(url.get(5..).unwrap_or_default(), param);
    }
    if starts_with_ignore_case(url, "https://") || starts_with_ignore_case(url, "http://") {
        let mut file = Map::new();
        if let Some(mime) = mime_from_path(url) {
            file.insert("mimeType".into(), mime.into());
        }
        file.insert("fileUri".into(), url.into());
        return Ok(json!({ "fileData": file }));
    }
    Err(invalid("invalid_value", "Media URLs must be http(s) URLs or base64 data: URLs.", param))
}

fn inline_from_data_url(rest: &str, param: String) -> Result<Value, GatewayError> {
    let parsed = rest.split_once(',').and_then(|(meta, data)| {
        let mut fields = meta.split(';');
        let mime = fields.next().unwrap_or("").trim();
        let base64 = fields.any(|f| f.trim().eq_ignore_ascii_case("base64"));
        (base64 && !mime.is_empty()).then_some((mime, data))
    });
    let (mime, data) = parsed.ok_or_else(|| {
        invalid("invalid_value", "data: URLs must name a media type and be base64 (data:<type>;base64,<data>).", param)
    })?;
    Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }))
}

/// The media type a URL's file extension implies, for the types Gemini reads.
fn mime_from_path(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let (_, extension) = file.rsplit_once('.')?;
    Some(match extension.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "txt" => "text/plain",
        _ => return None,
    })
}

fn audio_part(part: &Value, param: String) -> Result<Value, GatewayError> {
    let audio = part.get("input_audio");
    let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
    let format = audio.and_then(|a| a.get("format")).and_then(Value::as_str);
    match (data, format) {
        (Some(data), Some(format)) if !format.is_empty() => Ok(json!({
            "inlineData": { "mimeType": format!("audio/{}", format.to_ascii_lowercase()), "data": data }
        })),
        _ => Err(invalid(
            "invalid_type",
            "An input_audio part needs 'input_audio.data' and 'input_audio.format'.",
            format!("{param}.input_audio"),
        )),
    }
}

fn file_part(part: &Value, param: String) -> Result<Value, GatewayError> {
    let file = part.get("file");
    let field = |name: &str| file.and_then(|f| f.get(name)).and_then(Value::as_str);
    if let Some(data) = field("file_data") {
        if starts_with_ignore_case(data, "data:") {
            return inline_from_data_url(data.get(5..).unwrap_or_default(), format!("{param}.file.file_data"));
        }
        // Raw base64: the file name has to say what it is.
        if let Some(mime) = field("filename").and_then(mime_from_path) {
            return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
        }
        return Err(invalid(
            "invalid_value",
            "'file.file_data' must be a data: URL (or carry a 'filename' with a known extension).",
            format!("{param}.file.file_data"),
        ));
    }
    if let Some(id) = field("file_id") {
        if starts_with_ignore_case(id, "https://") {
            return url_part(id, format!("{param}.file.file_id"));
        }
    }
    Err(invalid(
        "unsupported_content",
        "File parts for Gemini targets need 'file.file_data' (or a Gemini Files API URI as 'file.file_id').",
        format!("{param}.file"),
    ))
}
