//! Small PDF files built by hand, for the upload tests: well-formed enough that parsers take
//! them for real ones.

use std::io::Write;

/// A PDF file from its objects' bodies (object `i + 1` is `bodies[i]`), with a correct
/// cross-reference table, so that parsers take it for a well-formed file.
pub fn pdf(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        offsets.push(out.len());
        writeln!(out, "{} 0 obj", i + 1).unwrap();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", bodies.len() + 1).unwrap();
    for offset in offsets {
        writeln!(out, "{offset:010} 00000 n ").unwrap();
    }
    write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        bodies.len() + 1
    )
    .unwrap();
    out
}

pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\nendstream");
    body
}

pub fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub const CATALOG: &str = "<< /Type /Catalog /Pages 2 0 R >>";

/// One page of text in a standard font.
pub fn readable_pdf() -> Vec<u8> {
    pdf(&[
        text(CATALOG),
        text("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        text(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        ),
        text("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
        stream("", b"BT /F1 24 Tf 72 720 Td (Hello from a PDF) Tj ET"),
    ])
}
