//! Form bodies: the brief's clients send `-F` fields (multipart) or URL-encoded forms, and
//! FastAPI accepted both; so does this filter, with one set of limits and error messages.

use std::collections::HashMap;

use bytes::Bytes;
use warp::Filter;

use crate::error::ApiError;

/// An uploaded file part.
#[derive(Debug, Clone)]
pub struct FormFile {
    pub filename: String,
    pub bytes: Bytes,
}

/// The fields and files of a form body.
#[derive(Debug, Default)]
pub struct Form {
    fields: HashMap<String, String>,
    files: HashMap<String, Vec<FormFile>>,
}

impl Form {
    /// A required text field, trimmed.
    pub fn text(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name)
            .ok_or_else(|| ApiError::Invalid(format!("Missing form field: {name}.")))
    }

    /// A required text field that must not be blank.
    pub fn non_blank(&self, name: &str) -> Result<&str, ApiError> {
        let value = self.text(name)?;
        if value.is_empty() {
            return Err(ApiError::Invalid(format!("Form field {name} must not be empty.")));
        }
        Ok(value)
    }

    pub fn optional(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|v| v.trim())
    }

    /// A required boolean field: `true`/`false` (any case), `1`/`0`.
    pub fn boolean(&self, name: &str) -> Result<bool, ApiError> {
        match self.text(name)?.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(ApiError::Invalid(format!(
                "Form field {name} must be true or false, not {other:?}."
            ))),
        }
    }

    /// The files sent under `name`, in order, taken out of the form.
    pub fn take_files(&mut self, name: &str) -> Vec<FormFile> {
        self.files.remove(name).unwrap_or_default()
    }

    /// [`Form::non_blank`], owned.
    pub fn non_blank_string(&self, name: &str) -> Result<String, ApiError> {
        self.non_blank(name).map(str::to_owned)
    }
}

/// A form body read into the typed fields of one endpoint; the same struct documents the
/// endpoint (utoipa), so the documentation cannot drift from what is read.
pub trait FromForm: Sized {
    fn from_form(form: Form) -> Result<Self, ApiError>;
}

/// Like [`form`], read into `T`. Errors (a bad body, a missing field) come out as `Err` for the
/// handler.
pub fn typed_form<T: FromForm + Send>(
    max_body: u64,
    max_file: u64,
) -> impl Filter<Extract = (Result<T, ApiError>,), Error = warp::Rejection> + Clone {
    form(max_body, max_file).map(|form: Result<Form, ApiError>| form.and_then(T::from_form))
}

/// Extracts a [`Form`] from a multipart or URL-encoded body of at most `max_body` bytes whose
/// files are at most `max_file` bytes each. Parse errors come out as `Err` for the handler.
pub fn form(
    max_body: u64,
    max_file: u64,
) -> impl Filter<Extract = (Result<Form, ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(warp::body::content_length_limit(max_body))
        .and(warp::body::bytes())
        .then(move |content_type: Option<String>, body: Bytes| async move {
            parse(content_type.as_deref().unwrap_or(""), body, max_file).await
        })
}

async fn parse(content_type: &str, body: Bytes, max_file: u64) -> Result<Form, ApiError> {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" => parse_multipart(content_type, body, max_file).await,
        "application/x-www-form-urlencoded" => Ok(parse_urlencoded(&body)),
        _ => Err(ApiError::Invalid(
            "Expected a form body (multipart/form-data or application/x-www-form-urlencoded).".into(),
        )),
    }
}

fn parse_urlencoded(body: &[u8]) -> Form {
    let fields = form_urlencoded::parse(body).into_owned().collect();
    Form {
        fields,
        files: HashMap::new(),
    }
}

/// Parts (fields and files) of one multipart body at most.
const MAX_PARTS: usize = 1_000;

async fn parse_multipart(content_type: &str, body: Bytes, max_file: u64) -> Result<Form, ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::Invalid("Multipart body without a boundary.".into()))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let limits = multer::Constraints::new().size_limit(multer::SizeLimit::new().per_field(max_file));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, limits);
    let mut form = Form::default();
    let mut parts = 0;
    while let Some(field) = multipart.next_field().await.map_err(|e| multipart_error(e, max_file))? {
        // Files per upload have their own, smaller limit (`Uploads`); this bounds the parsing.
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::TooLarge(format!(
                "A form may have at most {MAX_PARTS} parts."
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(filename) => {
                let bytes = field.bytes().await.map_err(|e| multipart_error(e, max_file))?;
                form.files.entry(name).or_default().push(FormFile { filename, bytes });
            }
            None => {
                let text = field.text().await.map_err(|e| multipart_error(e, max_file))?;
                form.fields.insert(name, text);
            }
        }
    }
    Ok(form)
}

fn multipart_error(error: multer::Error, max_file: u64) -> ApiError {
    match error {
        multer::Error::FieldSizeExceeded { field_name, .. } => ApiError::TooLarge(format!(
            "Form field {} is larger than the {} MiB upload limit.",
            field_name.unwrap_or_default(),
            max_file / (1024 * 1024)
        )),
        other => ApiError::Invalid(format!("Malformed multipart body: {other}.")),
    }
}
